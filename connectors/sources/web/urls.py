"""URLs of a crawl: the normal form that names a page, sites and origins, and which media types are read."""

from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from connectors.parsing import media_type_for

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#: Content types the parsers read (see connectors.parsing); anything else is skipped.
SUPPORTED_MEDIA_TYPES = frozenset(
    {
        "text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/x-markdown",
        "application/pdf", "application/x-pdf", _DOCX, "text/csv", "application/csv",
        "text/comma-separated-values",
    }
)  # fmt: skip
HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_GENERIC_MEDIA_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/download", "application/force-download"}
)
#: Links to these are not requested at all: the parsers cannot read them anyway.
_SKIPPED_EXTENSIONS = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".ico", ".bmp", ".tif", ".tiff", ".avif",
        ".css", ".js", ".mjs", ".map", ".json", ".woff", ".woff2", ".ttf", ".otf", ".eot",
        ".zip", ".gz", ".tgz", ".bz2", ".xz", ".tar", ".rar", ".7z", ".jar", ".war",
        ".exe", ".msi", ".dmg", ".iso", ".apk", ".deb", ".rpm", ".bin",
        ".mp3", ".mp4", ".m4a", ".m4v", ".avi", ".mov", ".wmv", ".webm", ".ogg", ".ogv", ".wav", ".flac", ".mkv",
        ".doc", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp", ".rtf", ".eps", ".ps",
    }
)  # fmt: skip


MAX_URL_LENGTH = 1024


_DEFAULT_PORTS = {"http": 80, "https": 443}


_TAB_NEWLINE = re.compile(r"[\t\n\r]")


# --- URLs ------------------------------------------------------------------------------------------


def normalize_url(url: str) -> str | None:
    """The crawl's form of a URL, or None when it is not a crawlable http(s) URL.

    Lower-case scheme and host (IDNA), default port dropped, fragment dropped, "/" for an
    empty path, percent-encoding as httpx writes it; path and query are otherwise kept.
    URLs with credentials are refused (they would end up in ids and logs).
    """
    if not isinstance(url, str):
        return None
    url = _TAB_NEWLINE.sub("", url).strip()
    if not url:
        return None
    try:
        parsed = httpx.URL(url)
        scheme = parsed.scheme.lower()
        if scheme not in _DEFAULT_PORTS or parsed.userinfo:
            return None
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
        port = parsed.port
        path = parsed.raw_path.decode("ascii")
    except (httpx.InvalidURL, ValueError, UnicodeError, TypeError):
        return None
    if not host or (port is not None and not 0 < port < 65536):
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    if not path.startswith("/"):
        path = "/" + path
    if path.endswith("?"):
        path = path[:-1]
    normalized = f"{scheme}://{netloc}{path}"
    return normalized if len(normalized) <= MAX_URL_LENGTH else None  # ids are stored in 1024 characters


def _site_key(url: str) -> str:
    """What "the same site" compares: the host without "www.", and a non-default port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        return f"{host}:{port}"
    return host


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _extension(url: str) -> str:
    name = urlsplit(url).path.rsplit("/", 1)[-1].lower()
    stem, dot, ext = name.rpartition(".")
    return f".{ext}" if dot and stem else ""


def _media_type(content_type: str, url: str) -> str:
    """The media type to parse with (header value, with charset), or "" when unsupported."""
    essence = content_type.split(";", 1)[0].strip().lower()
    if essence in SUPPORTED_MEDIA_TYPES:
        return content_type.strip()
    if essence in _GENERIC_MEDIA_TYPES:  # a server that does not know: trust the file name
        return media_type_for(unquote(urlsplit(url).path))
    return ""


# --- robots.txt (RFC 9309) -------------------------------------------------------------------


def _join(base: str, href: str) -> str | None:
    try:
        return urljoin(base, _TAB_NEWLINE.sub("", str(href)).strip())
    except ValueError:
        return None
