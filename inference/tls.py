"""One TLS context per process for the clients of the model servers.

httpx builds a new SSL context, reading the whole CA bundle, for every client it creates:
about 30 ms each time on this machine. A chat answer creates a client per model call, so
that cost sat on every answer's time to first token. The context honours SSL_CERT_FILE and
SSL_CERT_DIR as httpx's default does.
"""

from __future__ import annotations

import ssl
from functools import lru_cache

import httpx


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=True)
