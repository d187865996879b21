"""Authentication of API views by personal token: `Authorization: Bearer <token>`.

The views it guards ignore the session cookie entirely (so CSRF does not apply): the
request acts as the token's owner, with that owner's groups and conversations.
Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, which both
the native API and the OpenAI-compatible endpoints answer with.

Each view names the scope it needs (assistant/accounts/scopes.py), one for all methods or
one per method; a valid token without it gets 403 `insufficient_scope` naming the scope.
"""

from __future__ import annotations

import functools

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from assistant.accounts.scopes import SCOPES
from assistant.accounts.tokens import TokenAuthError, api_token_authenticate
from connectors.stage_timing import lap

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def api_error(message: str, *, status: int, code: str | None = None, param: str | None = None,
              error_type: str | None = None) -> JsonResponse:
    error_type = error_type or ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    response = JsonResponse(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}, status=status
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="assistant", error="invalid_token"'
    return response


def bearer_token(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return value.strip()


def scope_refusal(token, scope: str) -> JsonResponse | None:
    """403 naming `scope` if the token lacks it, else None."""
    if token.has_scope(scope):
        return None
    response = api_error(
        f"This API token lacks the '{scope}' scope needed here. Create a token with it on the API tokens page.",
        status=403, code="insufficient_scope", param=scope,
    )
    response["WWW-Authenticate"] = f'Bearer realm="assistant", error="insufficient_scope", scope="{scope}"'
    return response


def _scopes_needed(scope: str | dict[str, str], method: str) -> list[str]:
    if isinstance(scope, str):
        return [scope]
    if method in scope:
        return [scope[method]]
    return sorted(set(scope.values()))  # a method the view does not serve: the strictest, then its 405


def _refusal(request: HttpRequest, scope: str | dict[str, str]) -> JsonResponse | None:
    """Authenticate the request; None if it may go on (request.user set), else the 401/403 response."""
    try:
        token = api_token_authenticate(bearer_token(request))
    except TokenAuthError as exc:
        return api_error(str(exc), status=401, code=exc.code)
    for needed in _scopes_needed(scope, request.method):
        refusal = scope_refusal(token, needed)
        if refusal is not None:
            return refusal
    request.user = token.user
    request.api_token = token
    return None


def token_required(*, scope: str | dict[str, str]):
    """Guard a sync or async view: a valid token with `scope`, or a 401/403 JSON error.

    `scope`: the scope every method needs, or {method: scope}; e.g.
    `@token_required(scope={"GET": scopes.CONVERSATIONS_READ, "POST": scopes.ASK})`.
    """
    for name in [scope] if isinstance(scope, str) else scope.values():
        if name not in SCOPES:
            raise ValueError(f"Unknown API token scope {name!r}.")

    def decorate(view):
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request, *args, **kwargs):
                lap("middleware")
                refusal = await sync_to_async(_refusal)(request, scope)
                lap("auth")
                if refusal is not None:
                    return refusal
                return await view(request, *args, **kwargs)

            async_wrapper.token_scope = scope  # what it needs, for the docs' check (test_token_scopes.py)
            return csrf_exempt(async_wrapper)

        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            refusal = _refusal(request, scope)
            if refusal is not None:
                return refusal
            return view(request, *args, **kwargs)

        wrapper.token_scope = scope
        return csrf_exempt(wrapper)

    return decorate
