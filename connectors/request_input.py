"""Strict reading of what a request sends: a JSON body, form fields, query parameters.

Every view reads its input through these functions, so bad input is refused in one place,
before it reaches a query or a save, with a message that says what is wrong:

- a JSON body that is not UTF-8, not JSON, not an object, or nested absurdly deep;
- a value of the wrong type (a list where text is expected, text where a list is);
- text holding a NUL character or a lone UTF-16 surrogate ("\\ud800" in JSON), which
  PostgreSQL cannot store (a DataError, i.e. a 500, if it got that far);
- text or a list longer than the field allows, a number out of range.

They raise `RequestInvalid`; each view answers it as a 400 in its own shape (an OpenAI-style
error object, the native API's error object, {"error": "..."} for the chat page's fetches,
or the page with the message for a form). Bodies larger than DATA_UPLOAD_MAX_MEMORY_SIZE
are refused by Django while reading (413 here).

It lives in `connectors` (below `assistant` in the dependency direction) so the data
source pages and the chat product share it, like the audit log does.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

MAX_TEXT_CHARS = 100_000  # a field with no smaller limit of its own
MAX_QUERY_CHARS = 1_000  # a search box or filter in a query string
MAX_DEPTH = 32  # nesting of a JSON body
MAX_ITEMS = 1_000  # a list in a JSON body

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


class RequestInvalid(ValueError):
    """Input the client must fix; the message says how. `param` names the field."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.param = param
        self.status = status
        self.code = code or ("request_too_large" if status == 413 else "invalid_request")


def check_text(value: str, name: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """`value` unchanged, if it holds no NUL or lone surrogate and is at most `max_chars` long."""
    match = _FORBIDDEN.search(value)
    if match:
        what = "a NUL character" if match.group() == "\x00" else "an invalid character (a lone surrogate)"
        raise RequestInvalid(f"'{name}' contains {what}; remove it.", param=name)
    if len(value) > max_chars:
        raise RequestInvalid(f"'{name}' is too long ({len(value)} characters); the limit is {max_chars}.", param=name)
    return value


def check_json_value(value: Any, name: str = "", *, depth: int = 0) -> Any:
    """`value` unchanged, if every string in it (keys too) is storable and it is not absurdly deep or long.

    NaN and infinities are refused as well: PostgreSQL's jsonb cannot hold them. Errors name
    the place, e.g. `messages[0].content` (`name` is the path so far; "" at the top).
    """
    label = name or "value"
    if depth > MAX_DEPTH:
        raise RequestInvalid(f"'{label}' is nested too deeply (more than {MAX_DEPTH} levels).", param=name or None)
    if isinstance(value, str):
        check_text(value, label)
    elif isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise RequestInvalid(f"'{label}' holds a number JSON cannot carry (NaN or infinity).", param=name or None)
    elif isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise RequestInvalid(f"'{label}' has too many keys; the limit is {MAX_ITEMS}.", param=name or None)
        for key, item in value.items():
            check_text(key, f"a key of '{label}'" if name else "a key", max_chars=1000)
            check_json_value(item, f"{name}.{key}" if name else key, depth=depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_ITEMS:
            raise RequestInvalid(f"'{label}' has too many items; the limit is {MAX_ITEMS}.", param=name or None)
        for index, item in enumerate(value):
            check_json_value(item, f"{name}[{index}]", depth=depth + 1)
    return value


def parse_json(raw: bytes | str, name: str = "body") -> Any:
    """JSON from bytes (UTF-8 only) or text, checked by check_json_value."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestInvalid(f"The {name} is not valid UTF-8.", code="invalid_json") from None
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise RequestInvalid(f"The {name} is not valid JSON.", code="invalid_json") from None
    return check_json_value(value)


def _refuse_constant(constant: str):
    raise ValueError(f"{constant} is not JSON")


def json_object(request) -> dict:
    """The request's JSON body as an object ({} when empty), or RequestInvalid saying what is wrong."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise RequestInvalid("The request body is too large.", status=413) from None
    if not raw.strip():
        return {}
    body = parse_json(raw, "request body")
    if not isinstance(body, dict):
        raise RequestInvalid('The request body must be a JSON object, e.g. {"content": "..."}.', code="invalid_json")
    return body


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def body_fields(request) -> Mapping:
    """The form fields of a form post, else the JSON object of the body ({} when there is none)."""
    if request.content_type in FORM_TYPES:
        return request.POST
    return json_object(request)


def text(data: Mapping, name: str, *, default: str = "", max_chars: int = MAX_TEXT_CHARS,
         allow_none: bool = False) -> str | None:
    """The text field `name` of a JSON object, a form or a query string (`default` when absent)."""
    value = data.get(name, default)
    if value is None and (allow_none or default is None):
        return None
    if not isinstance(value, str):
        raise RequestInvalid(f"'{name}' must be text.", param=name)
    return check_text(value, name, max_chars=max_chars)


def query_text(request, name: str, *, max_chars: int = MAX_QUERY_CHARS) -> str:
    """A query-string parameter, stripped."""
    return text(request.GET, name, max_chars=max_chars).strip()


def boolean(data: Mapping, name: str, *, default: bool = False) -> bool:
    """A JSON true/false, or a form's "1"/"true"/"on"/"yes" (anything else is false)."""
    value = data.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        check_text(value, name, max_chars=10)
        return value.strip().lower() in ("1", "true", "on", "yes")
    raise RequestInvalid(f"'{name}' must be true or false.", param=name)


def whole_number(data: Mapping, name: str, *, default: int | None, minimum: int, maximum: int) -> int | None:
    """A whole number within [minimum, maximum] (a JSON number or decimal text)."""
    value = data.get(name, "")
    if value in ("", None):
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RequestInvalid(f"'{name}' must be a whole number.", param=name)
    if isinstance(value, str):
        value = value.strip()
        if not value.isascii() or not value.lstrip("-").isdigit() or len(value) > 20:
            raise RequestInvalid(f"'{name}' must be a whole number.", param=name)
        value = int(value)
    if not minimum <= value <= maximum:
        raise RequestInvalid(f"'{name}' must be between {minimum} and {maximum}.", param=name)
    return value


def text_list(data: Mapping, name: str, *, max_items: int = 100, max_chars: int = 200) -> list[str]:
    """A JSON list of strings (absent or null: empty)."""
    value = data.get(name)
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestInvalid(f"'{name}' must be a list of text values.", param=name)
    if len(value) > max_items:
        raise RequestInvalid(f"'{name}' has too many items; the limit is {max_items}.", param=name)
    return [check_text(item, name, max_chars=max_chars) for item in value]


def form_list(data: Mapping, name: str, *, max_items: int = 100, max_chars: int = 200) -> list[str]:
    """A repeated form field (checkboxes, several inputs of one name) or a JSON list of strings."""
    if not hasattr(data, "getlist"):
        return text_list(data, name, max_items=max_items, max_chars=max_chars)
    values = data.getlist(name)
    if len(values) > max_items:
        raise RequestInvalid(f"'{name}' has too many items; the limit is {max_items}.", param=name)
    return [check_text(value, name, max_chars=max_chars) for value in values]


# --- answering it ---------------------------------------------------------------------------------


def wants_json(request: HttpRequest) -> bool:
    return (
        request.content_type == "application/json"
        or "application/json" in request.headers.get("Accept", "")
        or "/api/" in request.path
    )


def bad_request(request: HttpRequest, exc: RequestInvalid) -> HttpResponse:
    """{"error": message} for fetches and JSON clients, else a page with the message."""
    if wants_json(request):
        return JsonResponse({"error": str(exc), "param": exc.param}, status=exc.status)
    return render(request, "bad_request.html", {"message": str(exc)}, status=exc.status)


def answers_bad_input(view):
    """Decorate a view (sync or async) so that RequestInvalid becomes `bad_request`'s 400."""
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request, *args, **kwargs):
            try:
                return await view(request, *args, **kwargs)
            except RequestInvalid as exc:
                return bad_request(request, exc)

        return async_wrapper

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except RequestInvalid as exc:
            return bad_request(request, exc)

    return wrapper
