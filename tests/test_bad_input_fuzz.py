"""Property: no input makes any endpoint answer 500.

Every named route of the URL configuration must have an entry in ENDPOINTS (what it reads:
JSON, form fields, query parameters, files), so a new endpoint without one fails
`test_every_endpoint_has_a_fuzz_entry`. Hypothesis then sends each endpoint, as the owner and
as staff (the token-authenticated APIs with their API token), random values of random types:
NUL bytes, lone surrogates, invalid UTF-8, huge strings and numbers, NaN, deep nesting, lists
where text is expected. Every answer must be below 500 (the test client re-raises any exception
a view lets escape, so a DataError, UnicodeDecodeError or AttributeError fails the test with
its traceback).

CI runs a few examples per endpoint (FUZZ_EXAMPLES, default 15); bench/fuzz_endpoints.py runs
thousands and prints the counts (FUZZ_REPORT names a JSON file each run appends to).
"""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from assistant.accounts.tokens import api_token_create
from assistant.chat.models import Attachment, Conversation, ConversationShare, Memory, Message
from assistant.evaluation.models import EvaluationCase, EvaluationProfile
from connectors.libraries import library_create, library_files_upload
from connectors.models import Connector, Document, SyncRun
from tests.chat.fake_llm import serve_fake_llm

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
REPORT = os.environ.get("FUZZ_REPORT", "")

#: Django's own admin (staff only, its own forms) is not this project's input handling.
SKIPPED_NAMESPACES = {"admin"}


@dataclass(frozen=True)
class Endpoint:
    methods: tuple[str, ...]
    fields: tuple[str, ...] = ()  # what it reads from a JSON body, form or query string
    who: str = "user"  # user | staff (staff only) | api (bearer token) | anonymous
    files: str = ""  # the multipart field of an upload
    upload_source: bool = False  # acts on an "Uploaded files" connector rather than a folder


DATASET_EDITOR_FIELDS = ("host", "port", "database", "user", "password", "query", "dataset")

ENDPOINTS: dict[str, Endpoint] = {
    "healthz": Endpoint(("GET",), who="anonymous"),
    "login": Endpoint(("GET", "POST"), ("username", "password", "next"), who="anonymous"),
    "logout": Endpoint(("POST",), ("next",)),
    "oidc_authentication_init": Endpoint(("GET",), ("next",), who="anonymous"),
    "oidc_authentication_callback": Endpoint(("GET",), ("code", "state"), who="anonymous"),
    "set_language": Endpoint(("POST",), ("language", "next")),
    # chat
    "chat:home": Endpoint(("GET",)),
    "chat:conversation": Endpoint(("GET",)),
    "chat:rename": Endpoint(("POST",), ("title",)),
    "chat:delete": Endpoint(("POST",)),
    "chat:restore": Endpoint(("POST",)),
    "chat:pin": Endpoint(("POST",), ("pinned",)),
    "chat:api_conversation_search": Endpoint(("GET",), ("q",)),
    "chat:api_answer_regenerate": Endpoint(("POST",)),
    "chat:api_question_edit": Endpoint(("POST",), ("content",)),
    "chat:api_message_activate": Endpoint(("POST",)),
    "chat:document": Endpoint(("GET",), ("chunk",)),
    "chat:attachment": Endpoint(("GET",), ("chunk",)),
    "chat:api_conversation_create": Endpoint(("POST",), ("assistant_id",)),
    "chat:api_question_submit": Endpoint(("POST",), ("content", "attachment_ids")),
    "chat:api_attachment_add": Endpoint(("POST",), files="file"),
    "chat:api_attachment_remove": Endpoint(("POST",)),
    "chat:api_answer_stream": Endpoint(("GET",)),
    "chat:api_answer_stop": Endpoint(("POST",)),
    "chat:query_csv": Endpoint(("GET",)),  # a query result's CSV, run again as the reader
    "chat:api_conversation_assistant": Endpoint(("POST",), ("assistant_id",)),
    "chat:api_answer_retry": Endpoint(("POST",)),
    "chat:api_message_feedback": Endpoint(("POST",), ("rating", "comment")),
    "chat:feedback_list": Endpoint(("GET",), ("rating", "from", "to", "page"), who="staff"),
    "chat:feedback_export": Endpoint(("GET",), ("rating", "from", "to"), who="staff"),
    "chat:memories": Endpoint(("GET",)),
    "chat:memory_toggle": Endpoint(("POST",), ("enabled", "next")),
    "chat:memory_add": Endpoint(("POST",), ("text",)),
    "chat:memory_edit": Endpoint(("POST",), ("text",)),
    "chat:memory_delete": Endpoint(("POST",)),
    "chat:shared_list": Endpoint(("GET",)),
    "chat:shared_conversation": Endpoint(("GET",)),
    "chat:api_shares": Endpoint(("GET", "POST"), ("usernames", "groups")),
    "chat:api_share_revoke": Endpoint(("POST",)),
    "chat:libraries": Endpoint(("POST",), ("libraries",)),  # pin the conversation to libraries
    "chat:libraries_new": Endpoint(("POST",), ("libraries",)),
    # libraries (every user; the library of the world's user, another's for staff: a 404)
    "libraries:list": Endpoint(("GET",)),
    "libraries:create": Endpoint(("POST",), ("name", "description")),
    "libraries:detail": Endpoint(("GET",)),
    "libraries:rename": Endpoint(("POST",), ("name", "description")),
    "libraries:delete": Endpoint(("POST",)),
    "libraries:share": Endpoint(("POST",), ("groups", "users")),
    "libraries:upload": Endpoint(("POST",), files="files"),
    "libraries:file_remove": Endpoint(("POST",), ("name",)),
    "libraries:ask": Endpoint(("POST",)),
    # tokens
    "tokens:list": Endpoint(("GET", "POST"), ("name", "expires_in_days")),
    "tokens:revoke": Endpoint(("POST",)),
    # connectors (staff)
    "connectors:list": Endpoint(("GET",), who="staff"),
    "connectors:create": Endpoint(("GET", "POST"), ("name", "path", "recursive", "max_file_bytes", "is_public",
                                                    "groups", "sync_interval", "is_paused", "extensions"), who="staff"),
    "connectors:run": Endpoint(("GET",), who="staff"),
    "connectors:audit": Endpoint(("GET",), ("action", "actor", "target", "page"), who="staff"),
    "connectors:document": Endpoint(("GET",), ("user",), who="staff"),
    "connectors:detail": Endpoint(("GET",), who="staff"),
    "connectors:edit": Endpoint(("GET", "POST"), ("name", "path", "recursive", "max_file_bytes", "groups",
                                                  "sync_interval"), who="staff"),
    "connectors:test": Endpoint(("POST",), who="staff"),
    # the dataset editor of database connectors: JSON bodies with the form's connection and a dataset
    "connectors:new_tables": Endpoint(("POST",), DATASET_EDITOR_FIELDS, who="staff"),
    "connectors:new_preview": Endpoint(("POST",), DATASET_EDITOR_FIELDS, who="staff"),
    "connectors:tables": Endpoint(("POST",), DATASET_EDITOR_FIELDS, who="staff"),
    "connectors:preview": Endpoint(("POST",), DATASET_EDITOR_FIELDS, who="staff"),
    "connectors:index": Endpoint(("GET",), who="staff"),
    "connectors:index_rebuild": Endpoint(("POST",), who="staff"),
    "connectors:index_progress": Endpoint(("GET",), who="staff"),
    "connectors:progress": Endpoint(("GET",), who="staff"),
    "connectors:documents": Endpoint(("GET",), ("q", "status", "page"), who="staff"),
    "connectors:why": Endpoint(("GET",), ("id",), who="staff"),
    "connectors:upload": Endpoint(("POST",), who="staff", files="files", upload_source=True),
    "connectors:file_delete": Endpoint(("POST",), ("name",), who="staff", upload_source=True),
    "connectors:action": Endpoint(("POST",), who="staff"),
    "sources_moved": Endpoint(("GET", "POST"), ("action", "q"), who="staff"),  # the old address: a 301
    # evaluation cases and runs (staff)
    "evaluation:dashboard": Endpoint(("GET",), ("tag",), who="staff"),
    "evaluation:run_start": Endpoint(("POST",), ("tag", "assistant", "answered_by", "profile", "judge", "label"),
                                     who="staff"),
    "evaluation:run": Endpoint(("GET",), who="staff"),
    "evaluation:run_progress": Endpoint(("GET",), who="staff"),
    "evaluation:compare": Endpoint(("GET",), ("a", "b"), who="staff"),
    "evaluation:cases": Endpoint(("GET",), ("tag", "assistant", "page"), who="staff"),
    "evaluation:case_new": Endpoint(("GET", "POST"), ("message", "question", "expected_answer", "expected_sources",
                                                      "more_documents", "must_contain", "tags", "groups"), who="staff"),
    "evaluation:case_export": Endpoint(("GET",), ("tag", "assistant"), who="staff"),
    "evaluation:case_import": Endpoint(("POST",), ("tags",), who="staff", files="file"),
    "evaluation:case": Endpoint(("GET", "POST"), ("question", "expected_answer", "expected_sources", "more_documents",
                                                  "must_not_contain", "expect_refusal", "tags"), who="staff"),
    "evaluation:case_delete": Endpoint(("POST",), who="staff"),
    "evaluation:profiles": Endpoint(("GET", "POST"), ("name", "description", "LLM_MODEL", "LLM_TEMPERATURE",
                                                      "RAG_TOP_K", "RAG_SEARCH_MODE", "RAG_DENSE_WEIGHT"), who="staff"),
    "evaluation:profile": Endpoint(("GET", "POST"), ("name", "description", "LLM_MAX_TOKENS", "RAG_RRF_K",
                                                     "RAG_FUSION", "RAG_CONTEXT_TOKENS"), who="staff"),
    "evaluation:profile_delete": Endpoint(("POST",), who="staff"),
    # token-authenticated JSON APIs
    "api:conversations": Endpoint(("GET", "POST"), ("title", "limit", "offset", "libraries"), who="api"),
    "api:conversation": Endpoint(("GET", "DELETE", "PATCH"), who="api"),
    "api:messages": Endpoint(("GET", "POST"), ("content", "stream", "attachment_ids"), who="api"),
    "api:conversation_libraries": Endpoint(("GET", "PUT", "POST"), ("libraries",), who="api"),  # pins
    "api:libraries": Endpoint(("GET", "POST"), who="api"),
    "api:shared": Endpoint(("GET",), who="api"),
    "api:shared_conversation": Endpoint(("GET", "DELETE"), who="api"),  # the owner's shared one; staff's: 404
    "openai:models": Endpoint(("GET",), who="api"),
    "openai:model": Endpoint(("GET",), who="api"),
    "openai:chat_completions": Endpoint(("POST",), ("model", "messages", "stream", "n", "libraries"), who="api"),
}


def routes(patterns=None, namespace=""):
    """(qualified name, parameter names) of every named route."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}".strip(":") if entry.namespace else namespace
            if inner.split(":")[0] not in SKIPPED_NAMESPACES:
                yield from routes(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            pattern = entry.pattern
            params = set(getattr(pattern, "converters", {}) or {}) | set(pattern.regex.groupindex)
            yield (f"{namespace}:{entry.name}" if namespace else entry.name), params


def test_every_endpoint_has_a_fuzz_entry():
    names = {name for name, _params in routes()}
    missing = sorted(names - set(ENDPOINTS))
    assert not missing, f"add these endpoints to ENDPOINTS in {__file__}: {', '.join(missing)}"
    stale = sorted(set(ENDPOINTS) - names)
    assert not stale, f"ENDPOINTS names routes that no longer exist: {', '.join(stale)}"


# --- values ------------------------------------------------------------------------------------------

NASTY_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\ufeff", "\u202e", "9" * 40, "-1", "1e309", "NaN",
    "²", "٣", "0x10", "true", "null", "[]", "{}", "../../etc/passwd", "<script>", "%00", "up", "down",
    "enterprise-assistant", "00000000-0000-0000-0000-000000000000", "x" * 120_000,
]
text_values = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(st.characters(blacklist_categories=()), max_size=40),  # surrogates included
    st.text(max_size=10).map(lambda t: t * 5000),
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                         st.floats(), text_values)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text_values, inner, max_size=3),
    max_leaves=6,
)
chat_messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool"]) | text_values,
                           "content": json_values}),
    max_size=3,
)
RAW_BODIES = [
    b"\xff\xfe\xfa", b'{"content": "\xc3\x28"}', b"[1, 2]", b'"text"', b"null", b"{", b"[" * 100_000,
    b'{"title": "\\ud800"}', b'{"content": "a\\u0000b"}', b'{"a": NaN}', b'{"a": 1e999}', b"\x00",
    b'{"messages": [{"role": "user", "content": "\\udfff"}], "model": "enterprise-assistant"}',
]


def _encode(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@st.composite
def requests(draw, endpoint: Endpoint):
    """(method, body kind, payload): what one fuzzed request sends."""
    method = draw(st.sampled_from(endpoint.methods))
    names = list(endpoint.fields) + ["extra"]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    if method in ("GET", "DELETE"):
        return method, "query", {name: draw(text_values) for name in chosen}
    kind = draw(st.sampled_from(["json", "form", "raw", "query"] + (["files"] if endpoint.files else [])))
    if kind == "json":
        body = {}
        for name in chosen:
            body[name] = draw(chat_messages if name == "messages" else json_values)
        return method, kind, body
    if kind == "raw":
        return method, kind, draw(st.sampled_from(RAW_BODIES))
    if kind == "files":
        name = draw(st.sampled_from(["notes.md", "plan.txt", "a.csv"]) | text_values)
        return method, kind, {"name": name, "content": draw(st.binary(max_size=200))}
    return method, kind, {name: draw(text_values) for name in chosen}


def _quote(value: str) -> str:
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")


def send(client: Client, url: str, endpoint: Endpoint, request, headers: dict):
    method, kind, payload = request
    if kind == "query":
        query = "&".join(f"{_quote(k)}={_quote(_encode(v))}" for k, v in payload.items())
        return client.generic(method, f"{url}?{query}" if query else url, **headers)
    if kind == "json":
        body = json.dumps(payload).encode()  # lone surrogates become \\udXXX escapes, NaN a bare NaN
        return client.generic(method, url, body, content_type="application/json", **headers)
    if kind == "raw":
        return client.generic(method, url, payload, content_type="application/json", **headers)
    if kind == "files":  # built by hand: the file name reaches the server as sent, bytes and all
        boundary = "fuzz-boundary-7d1e"
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{endpoint.files}"; '
                f'filename="{payload["name"][:300]}"\r\nContent-Type: text/plain\r\n\r\n')
        body = head.encode("utf-8", "surrogatepass") + payload["content"] + f"\r\n--{boundary}--\r\n".encode()
        return client.generic(method, url, body, content_type=f"multipart/form-data; boundary={boundary}", **headers)
    form = "&".join(f"{_quote(k)}={_quote(_encode(v))}" for k, v in payload.items())
    return client.generic(method, url, form.encode(), content_type="application/x-www-form-urlencoded", **headers)


# --- the world the requests act on -------------------------------------------------------------------


def world_of(user, connector, document, run) -> dict:
    conversation = Conversation.objects.create(user=user, title="Plans")
    question = Message.objects.create(conversation=conversation, role="user", content="Days of leave?",
                                      status=Message.Status.COMPLETE)
    answer = Message.objects.create(conversation=conversation, role="assistant", content="27 days [1].",
                                    parent=question, status=Message.Status.COMPLETE)
    attachment = Attachment.objects.create(conversation=conversation, name="plan.md", media_type="text/markdown",
                                           size=10, text="A plan")
    memory = Memory.objects.create(user=user, text="I work in Lyon")
    token, secret = api_token_create(user=user, name="fuzz")
    team, _created = Group.objects.get_or_create(name="fuzz-team")
    share = ConversationShare.objects.create(conversation=conversation, group=team, created_by=user)
    return {
        "values": {
            "conversation_id": conversation.id, "message_id": answer.id, "attachment_id": attachment.id,
            "memory_id": memory.id, "token_id": token.id, "document_id": document.id,
            "connector_id": connector.id, "run_id": run.id, "kind": "folder", "action": "pause",
            "rest": f"{connector.id}/documents/", "model_id": "enterprise-assistant",
            "case_id": EvaluationCase.objects.create(question="Days of leave?", expected_answer="27 days").id,
            "profile_id": EvaluationProfile.objects.create(name=f"profile of {user.username}",
                                                           values={"RAG_TOP_K": 3}).id,
            "query_id": uuid.uuid4(), "share_id": share.id,
        },
        "secret": secret,
    }


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Before the personas are made: hashing their passwords would take most of the run's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fake_llm(settings):
    """A question that gets through is answered (a model that is down would be a 503, not a bug)."""
    yield from serve_fake_llm(settings)


@pytest.fixture
def worlds(owner, staff, engineering, settings, tmp_path, fake_llm):
    settings.CHAT_RATE_LIMIT = None
    settings.LOGIN_FAILURE_LIMIT = None
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    connector = Connector.objects.create(name="Handbook", kind="folder", config={"path": str(tmp_path)},
                                         is_public=True)
    upload_source = Connector.objects.create(name="Uploads", kind="upload", is_public=True,
                                             config={"path": str(tmp_path / "uploads" / "u")})
    document = Document.objects.create(connector=connector, external_id="a.md", title="Leave", text="27 days",
                                       content_hash="x", acl_public=True)
    run = SyncRun.objects.create(connector=connector, status=SyncRun.Status.SUCCEEDED)
    worlds = {"owner": (owner, world_of(owner, connector, document, run)),
              "staff": (staff, world_of(staff, connector, document, run))}
    library = library_create(owner=owner, name="Fuzzed library")  # staff's requests to it: 404s
    library_files_upload(library=library, files=[SimpleUploadedFile("notes.md", b"# Notes\n\nSome text.")])
    for _user, world in worlds.values():
        world["values"]["upload_connector_id"] = upload_source.id
        world["values"]["library_id"] = library.id
    return worlds


def _record(name: str, persona: str, statuses: Counter) -> None:
    if not REPORT:
        return
    with open(REPORT, "a") as out:
        out.write(json.dumps({"endpoint": name, "persona": persona, "statuses": dict(statuses)}) + "\n")


CASES = [(name, persona) for name, endpoint in ENDPOINTS.items() for persona in ("owner", "staff")
         if not (endpoint.who == "staff" and persona == "owner") and not (endpoint.who == "anonymous" and
                                                                            persona == "staff")]


@pytest.mark.parametrize(("name", "persona"), CASES)
def test_no_input_makes_an_endpoint_answer_500(name, persona, worlds):
    endpoint = ENDPOINTS[name]
    user, world = worlds[persona]
    params = dict(routes()).get(name, set())
    values = dict(world["values"])
    if endpoint.upload_source:
        values["connector_id"] = values["upload_connector_id"]
    url = reverse(name, kwargs={p: values[p] for p in params})
    client = Client()
    headers = {}
    if endpoint.who == "api":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {world['secret']}"
    elif endpoint.who != "anonymous":
        client.force_login(user)
    statuses: Counter = Counter()

    @hsettings(max_examples=EXAMPLES, deadline=None, database=None,
               suppress_health_check=list(HealthCheck))
    @given(request=requests(endpoint))
    def check(request):
        try:
            response = send(client, url, endpoint, request, headers)
        except Exception:  # a view let it escape: Django would answer 500
            statuses["exception"] += 1
            raise
        statuses[str(response.status_code)] += 1
        assert response.status_code < 500, (name, request[:2], response.status_code)

    try:
        check()
    finally:
        _record(name, persona, statuses)
