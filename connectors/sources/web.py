"""A web site: a breadth-first crawl from start URLs and/or a sitemap, over guarded HTTP.

External ids are normalised URLs (lower-case scheme and host, no default port, no
fragment; path and query kept as they are). Every request goes through
connectors.safe_http, so a crawl never reaches loopback, private or link-local
addresses unless the admin listed the host in `allowed_private_hosts` (intranet sites).

Rules of the crawl:
- Links (`<a href>`, `<area href>`) are followed from HTML pages only, up to `max_depth`
  hops from a start URL or a sitemap entry, and at most `max_pages` pages are requested.
- With `same_site` (the default) only hosts of the start URLs and the sitemap are
  crawled ("www." and the scheme do not matter, the port does); redirects to other sites
  are not followed.
- `include_patterns` / `exclude_patterns` (regexes searched in the URL) filter the links
  that are followed; start URLs are always read, and exclusions also stop redirects.
- robots.txt (RFC 9309: groups, longest match, `*` and `$`) is obeyed for the product
  token "AssistantBot", Crawl-delay included (up to 30 s); `<meta name=robots>` and the
  X-Robots-Tag header are honoured (noindex: not indexed but links followed; nofollow:
  links not followed); `rel=nofollow` links are not followed.
- `<link rel=canonical>` names the page's external id when it is on the same site.
- Only content types the parsers read are indexed; other responses are skipped silently.
- Re-syncs send If-None-Match / If-Modified-Since from the stored metadata; a 304 yields
  ItemUnchanged and the crawl goes on with the links stored with the page.

Metadata kept with each page (the engine must pass it back as `previous`):
    {"etag", "last_modified", "status", "content_type", "sha256", "links": [...up to 500],
     "links_truncated": True (only when the page had more), "fetched_url" (only when the
     external id differs from the URL requested: a redirect or a canonical link)}
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import logging
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup
from lxml import etree
from pydantic import Field, field_validator, model_validator

from connectors.parsing import media_type_for
from connectors.safe_http import (
    ROBOTS_AGENT,
    FetchError,
    RedirectRefused,
    SafeClient,
    SafeResponse,
    normalize_allowed_hosts,
)
from connectors.sources.base import (
    ItemFailure,
    ItemUnchanged,
    Source,
    SourceConfig,
    SourceDocument,
    SourceError,
    SourceItem,
)

logger = logging.getLogger(__name__)

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
MAX_STORED_LINKS = 500
MAX_LINKS_PER_PAGE = 5000
MAX_SITEMAPS = 50
MAX_SITEMAP_URLS = 100_000
SITEMAP_MAX_BYTES = 50 * 1024 * 1024
ROBOTS_MAX_BYTES = 512 * 1024
MAX_CRAWL_DELAY_S = 30.0
MAX_RETRY_AFTER_S = 30.0
RETRIES = 2
RETRY_STATUSES = frozenset({429, 502, 503, 504})
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


@lru_cache(maxsize=2048)
def _robots_pattern(pattern: str) -> re.Pattern[str]:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(part) for part in unquote(body).split("*"))
    return re.compile(regex + (r"\Z" if anchored else ""), re.DOTALL)


@dataclass
class RobotsRules:
    """The rules of one robots.txt that apply to AssistantBot."""

    rules: list[tuple[bool, str]] = field(default_factory=list)  # (allow, path pattern)
    crawl_delay: float | None = None
    #: robots.txt could not be read because of the server (5xx) or the network: crawl nothing.
    disallow_all: bool = False
    problem: str = ""  # why, when disallow_all

    @classmethod
    def parse(cls, text: str, agent: str = ROBOTS_AGENT) -> RobotsRules:
        agent = agent.lower()
        groups: list[dict] = []
        current: dict | None = None
        in_agents = False
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            key, colon, value = line.partition(":")
            if not colon:
                continue
            key, value = key.strip().lower(), value.strip()
            if key in ("user-agent", "useragent"):
                if current is None or not in_agents:
                    current = {"agents": set(), "rules": [], "delay": None}
                    groups.append(current)
                current["agents"].add(value.split("/", 1)[0].strip().lower())
                in_agents = True
            elif key in ("allow", "disallow"):
                in_agents = False
                if current is not None and value:  # an empty Disallow allows everything
                    current["rules"].append((key == "allow", value))
            elif key == "crawl-delay":
                in_agents = False
                if current is not None:
                    try:
                        current["delay"] = max(0.0, float(value))
                    except ValueError:
                        pass
        chosen = [g for g in groups if agent in g["agents"]] or [g for g in groups if "*" in g["agents"]]
        rules = [rule for group in chosen for rule in group["rules"]]
        delays = [group["delay"] for group in chosen if group["delay"] is not None]
        return cls(rules=rules, crawl_delay=delays[0] if delays else None)

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if target == "/robots.txt":
            return True
        if self.disallow_all:
            return False
        target = unquote(target)
        best_length, allowed = -1, True
        for allow, pattern in self.rules:
            if _robots_pattern(pattern).match(target):
                length = len(pattern)
                if length > best_length or (length == best_length and allow):
                    best_length, allowed = length, allow
        return allowed


# --- HTML --------------------------------------------------------------------------------------


@dataclass
class _HtmlFacts:
    links: list[str] = field(default_factory=list)
    directives: set[str] = field(default_factory=set)  # from <meta name=robots>
    canonical: str | None = None


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"')
    return ""


def _parse_html(content: bytes, url: str, content_type: str) -> _HtmlFacts:
    """Links, robots directives and canonical URL of an HTML page (best effort)."""
    facts = _HtmlFacts()
    try:
        soup = BeautifulSoup(content, "lxml", from_encoding=_charset(content_type) or None)
    except Exception:  # noqa: BLE001 - a page we cannot parse simply has no links
        logger.info("could not parse links of %s", url, exc_info=True)
        return facts
    base = url
    base_tag = soup.find("base", href=True)
    if base_tag is not None:
        base = _join(url, base_tag["href"]) or url
    for meta in soup.find_all("meta", attrs={"name": True, "content": True}):
        if str(meta["name"]).strip().lower() in ("robots", ROBOTS_AGENT.lower()):
            facts.directives.update(token.strip().lower() for token in str(meta["content"]).split(","))
    for link in soup.find_all("link", href=True):
        if "canonical" in _rels(link):
            facts.canonical = _join(base, link["href"])
            break
    seen: set[str] = set()
    for anchor in soup.find_all(["a", "area"], href=True):
        if "nofollow" in _rels(anchor):
            continue
        href = str(anchor["href"])
        if not href.strip() or href.strip().startswith("#"):
            continue
        target = _join(base, href)
        normalized = normalize_url(target) if target else None
        if normalized and normalized not in seen:
            seen.add(normalized)
            facts.links.append(normalized)
            if len(facts.links) >= MAX_LINKS_PER_PAGE:
                break
    return facts


def _rels(tag) -> list[str]:
    rel = tag.get("rel") or []
    if isinstance(rel, str):
        rel = rel.split()
    return [str(value).lower() for value in rel]


def _join(base: str, href: str) -> str | None:
    try:
        return urljoin(base, _TAB_NEWLINE.sub("", str(href)).strip())
    except ValueError:
        return None


def _header_directives(headers: httpx.Headers) -> set[str]:
    """noindex/nofollow from X-Robots-Tag, for all robots or for AssistantBot."""
    directives: set[str] = set()
    for value in headers.get_list("x-robots-tag"):
        first, colon, rest = value.partition(":")
        if colon and re.fullmatch(r"[A-Za-z0-9_-]+", first.strip()) and first.strip().lower() not in (
            "unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"
        ):
            if first.strip().lower() != ROBOTS_AGENT.lower():
                continue  # rules for another crawler
            value = rest
        directives.update(token.strip().lower() for token in value.split(","))
    return directives


# --- sitemaps ------------------------------------------------------------------------------------


def _sitemap_entries(content: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap, a sitemap index, or a plain-text list."""
    if content[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            content = inflater.decompress(content, SITEMAP_MAX_BYTES)
        except zlib.error as exc:
            raise FetchError(f"The compressed sitemap is damaged ({exc}).") from None
        if inflater.unconsumed_tail:
            raise FetchError(f"The sitemap is larger than {SITEMAP_MAX_BYTES:,} bytes uncompressed.")
    pages: list[str] = []
    nested: list[str] = []
    stripped = content.lstrip()
    if stripped.startswith(b"<") or stripped.startswith(b"\xef\xbb\xbf<"):
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True, huge_tree=False)
        try:
            root = etree.fromstring(content, parser=parser)
        except etree.XMLSyntaxError as exc:
            raise FetchError(f"The sitemap is not valid XML ({exc}).") from None
        if root is None:
            raise FetchError("The sitemap is not valid XML.")
        for element in root.iter():
            if not isinstance(element.tag, str) or etree.QName(element).localname != "loc":
                continue
            parent = element.getparent()
            kind = etree.QName(parent).localname if parent is not None and isinstance(parent.tag, str) else ""
            value = (element.text or "").strip()
            if not value:
                continue
            if kind == "sitemap":
                nested.append(value)
            elif kind == "url":
                pages.append(value)
    else:  # the text format: one URL per line
        for line in content.decode("utf-8", errors="replace").splitlines():
            line = line.strip()
            if line.startswith(("http://", "https://")):
                pages.append(line)
    return pages, nested


# --- the crawl ---------------------------------------------------------------------------------


@dataclass
class _Page:
    url: str  # the final URL, normalised
    status_code: int
    headers: httpx.Headers
    content: bytes = b""
    media_type: str = ""  # "" for a 200 whose type is not indexed
    redirects: list[str] = field(default_factory=list)


_T = TypeVar("_T", _Page, SafeResponse)


class _Crawl:
    """One pass over the site; remembers what it reached for list_ids."""

    def __init__(self, source: WebSource, client: SafeClient, previous: Mapping[str, dict] | None,
                 *, follow_links: bool = True):
        self.source = source
        self.config: WebSource.Config = source.config
        self.client = client
        self.follow_links = follow_links
        self.previous: dict[str, dict] = {k: v for k, v in (previous or {}).items() if isinstance(v, dict)}
        # The URL requested last time -> the id the page was stored under (redirects, canonicals).
        self.id_by_fetched_url: dict[str, str] = {doc_id: doc_id for doc_id in self.previous}
        for doc_id, meta in self.previous.items():
            if isinstance(meta.get("fetched_url"), str):
                self.id_by_fetched_url.setdefault(meta["fetched_url"], doc_id)
        #: Content digests of the pages of this crawl, to tell a true duplicate from a wrong canonical link.
        self.digests: dict[str, str] = {}
        self.site_keys = {_site_key(url) for url in self.config.start_urls}
        if self.config.sitemap_url:
            self.site_keys.add(_site_key(self.config.sitemap_url))
        self.include = [re.compile(p) for p in self.config.include_patterns]
        self.exclude = [re.compile(p) for p in self.config.exclude_patterns]
        self.start_urls = set(self.config.start_urls)
        self.queue: deque[tuple[str, int]] = deque()
        self.seen: set[str] = set()  # queued, requested, or reached through a redirect or canonical
        self.handled: set[str] = set()  # requested or yielded: never again in this crawl
        #: The ids that still exist: pages read, unchanged, or failing for a reason other than 404/410.
        self.present: set[str] = set()
        self.requested = 0
        self.truncated = False
        self.completed = False
        #: Why the crawl may have missed pages that exist (deletions must then be skipped).
        self.problems: list[str] = []
        self._robots: dict[str, RobotsRules] = {}
        self._last_request = 0.0

    # --- scope ---
    def same_site(self, url: str) -> bool:
        return not self.config.same_site or _site_key(url) in self.site_keys

    def in_scope(self, url: str) -> bool:
        if not self.same_site(url):
            return False
        if self.include and not any(p.search(url) for p in self.include):
            return False
        return not any(p.search(url) for p in self.exclude)

    def robots_allow(self, url: str) -> bool:
        return not self.config.respect_robots or self.robots_for(url).allows(url)

    def redirect_allowed(self, target: str) -> bool:
        normalized = normalize_url(target)
        return bool(
            normalized
            and self.same_site(normalized)
            and not any(p.search(normalized) for p in self.exclude)
            and self.robots_allow(normalized)
        )

    def enqueue(self, url: str, depth: int, *, seed: bool = False) -> None:
        normalized = normalize_url(url)
        if normalized is None or normalized in self.seen:
            return
        self.seen.add(normalized)
        if not seed and (not self.in_scope(normalized) or _extension(normalized) in _SKIPPED_EXTENSIONS):
            return
        if not self.robots_allow(normalized):
            logger.info("robots.txt disallows %s", normalized)
            return
        self.queue.append((normalized, depth))

    # --- robots.txt ---
    def robots_for(self, url: str) -> RobotsRules:
        origin = _origin(url)
        rules = self._robots.get(origin)
        if rules is None:
            rules = self._robots[origin] = self._load_robots(origin)
        return rules

    def _load_robots(self, origin: str) -> RobotsRules:
        robots_url = f"{origin}/robots.txt"
        try:
            response = self.with_retries(
                lambda: self.client.get(robots_url, max_bytes=ROBOTS_MAX_BYTES, truncate=True)
            )
        except FetchError as exc:
            if exc.transient:
                self.problems.append(f"{robots_url} could not be read ({exc}), so that host was not crawled")
                return RobotsRules(disallow_all=True, problem=str(exc))
            # Blocked or unknown host: its pages fail with that same reason, which the admin sees.
            return RobotsRules()
        if 200 <= response.status_code < 300:
            return RobotsRules.parse(response.text)
        if 400 <= response.status_code < 500:
            return RobotsRules()  # no robots.txt: everything is allowed
        self.problems.append(
            f"{robots_url} answered HTTP {response.status_code}, so that host was not crawled (RFC 9309)"
        )
        return RobotsRules(disallow_all=True, problem=f"HTTP {response.status_code}")

    # --- requests ---
    def with_retries(self, call: Callable[[], _T]) -> _T:
        """Call, retrying network failures and 429/502/503/504 answers up to RETRIES times."""
        for attempt in range(RETRIES + 1):
            try:
                result = call()
            except FetchError as exc:
                if not exc.transient or attempt == RETRIES:
                    raise
                self._backoff(attempt, None)
                continue
            if result.status_code in RETRY_STATUSES and attempt < RETRIES:
                self._backoff(attempt, result.headers.get("retry-after"))
                continue
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, retry_after: str | None) -> None:
        delay = self.source.RETRY_BACKOFF_S * (2**attempt)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                    delay = max(delay, (when - dt.datetime.now(dt.UTC)).total_seconds())
                except (TypeError, ValueError):
                    pass
        time.sleep(min(max(delay, 0.0), MAX_RETRY_AFTER_S))

    def _pause(self, url: str) -> None:
        delay = self.config.request_delay_s
        rules = self._robots.get(_origin(url))
        if self.config.respect_robots and rules is not None and rules.crawl_delay:
            delay = max(delay, min(rules.crawl_delay, MAX_CRAWL_DELAY_S))
        wait = self._last_request + delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_request = time.monotonic()

    def request(self, url: str, headers: dict[str, str]) -> _Page:
        def once() -> _Page:
            self._pause(url)
            with self.client.stream(url, headers=headers, redirect_policy=self.redirect_allowed) as response:
                final = normalize_url(str(response.url)) or str(response.url)
                page = _Page(
                    url=final,
                    status_code=response.status_code,
                    headers=response.headers,
                    redirects=[str(hop.url) for hop in response.history],
                )
                if response.status_code in (200, 203):
                    page.media_type = _media_type(response.headers.get("content-type", ""), final)
                    if page.media_type:  # unsupported types are not downloaded
                        page.content = self.client.read(response)
                return page

        return self.with_retries(once)

    # --- the walk ---
    def run(self, sitemap_urls: Iterable[str] = ()) -> Iterator[SourceItem]:
        for url in self.config.start_urls:
            self.enqueue(url, 0, seed=True)
        for url in sitemap_urls:
            self.enqueue(url, 0)
        while self.queue:
            url, depth = self.queue.popleft()
            if url in self.handled:
                continue
            if self.requested >= self.config.max_pages:
                self.truncated = True
                break
            self.requested += 1
            yield from self.visit(url, depth)
        self.completed = True

    def visit(self, url: str, depth: int) -> Iterator[SourceItem]:
        known_id = self.id_by_fetched_url.get(url)
        known = self.previous.get(known_id) if known_id else None
        self.handled.add(url)
        try:
            page = self.request(url, _conditional_headers(known))
        except RedirectRefused as exc:
            logger.info("not following %s", exc)
            if url in self.start_urls:
                self.problems.append(
                    f"the start URL {url} redirects to {exc.location}, which is outside the crawl "
                    "(another site, excluded, or disallowed by robots.txt)"
                )
            return
        except FetchError as exc:
            yield from self._failed(url, depth, known_id, known, str(exc))
            return
        for hop in page.redirects:
            hop_url = normalize_url(hop)
            if hop_url:
                self.seen.add(hop_url)
                self.handled.add(hop_url)
        final = page.url
        self.seen.add(final)
        if final != url and final in self.handled:
            return  # the redirect leads to a page this crawl already read
        self.handled.add(final)
        status = page.status_code
        if status == 304 and known_id is not None:
            self.handled.add(known_id)
            self.present.add(known_id)
            if known and isinstance(known.get("sha256"), str):
                self.digests[known_id] = known["sha256"]
            yield ItemUnchanged(known_id)
            self._follow(known.get("links") if known else None, depth)
            return
        if status in (404, 410):
            if url in self.start_urls:
                self.problems.append(f"the start URL {url} was not found (HTTP {status})")
            yield ItemFailure(url, f"The page was not found (HTTP {status}).")
            return
        if status not in (200, 203):
            yield from self._failed(url, depth, known_id, known, _status_reason(status, final))
            return
        if not page.media_type:
            logger.info("skipping %s: %s is not indexed", final, page.headers.get("content-type", "no content type"))
            return
        essence = page.media_type.split(";", 1)[0].strip().lower()
        directives = _header_directives(page.headers)
        facts = _HtmlFacts()
        if essence in HTML_MEDIA_TYPES:
            facts = _parse_html(page.content, final, page.media_type)
            directives |= facts.directives
        noindex = bool(directives & {"noindex", "none"})
        nofollow = bool(directives & {"nofollow", "none"})
        digest = hashlib.sha256(page.content).hexdigest()
        doc_id = final
        canonical = normalize_url(facts.canonical) if facts.canonical else None
        if canonical and canonical != final and self.same_site(canonical):
            if canonical not in self.handled:
                doc_id = canonical
            elif self.digests.get(canonical, digest) == digest:
                return  # a copy of a page already read under its canonical URL
            # else: the canonical page has other content (a site that names its home page as
            # every page's canonical): this page is kept under its own URL.
        self.handled.add(doc_id)
        self.seen.add(doc_id)
        self.digests[doc_id] = digest
        links = [] if nofollow else facts.links
        if not noindex:
            self.present.add(doc_id)
            yield self._document(doc_id, url, page, essence, links, digest)
        self._follow(links, depth)

    def _failed(self, url: str, depth: int, known_id: str | None, known: dict | None, reason: str):
        """A page that exists but could not be read: keep what was indexed and its links."""
        if url in self.start_urls:
            self.problems.append(f"the start URL {url} could not be read ({reason})")
        self.present.add(url)
        if known_id:
            self.present.add(known_id)
        yield ItemFailure(url, reason)
        self._follow(known.get("links") if known else None, depth)

    def _follow(self, links: Iterable[str] | None, depth: int) -> None:
        if not self.follow_links or not links or depth >= self.config.max_depth:
            return
        for link in list(links)[:MAX_LINKS_PER_PAGE]:
            if isinstance(link, str):
                self.enqueue(link, depth + 1)

    def _document(
        self, doc_id: str, requested: str, page: _Page, essence: str, links: list[str], digest: str
    ) -> SourceDocument:
        metadata: dict = {
            "etag": page.headers.get("etag") or None,
            "last_modified": page.headers.get("last-modified") or None,
            "status": page.status_code,
            "content_type": essence,
            "sha256": digest,
            "links": links[:MAX_STORED_LINKS],
        }
        if len(links) > MAX_STORED_LINKS:
            metadata["links_truncated"] = True  # a 304 could not continue the crawl: no conditional request
        if requested != doc_id:
            metadata["fetched_url"] = requested
        return SourceDocument(
            external_id=doc_id,
            title="",  # the parser's title (<title>, PDF metadata, first heading) wins
            location=doc_id,
            url=doc_id,
            media_type=page.media_type,
            content=page.content,
            modified_at=_http_date(metadata["last_modified"]),
            metadata=metadata,
        )


def _conditional_headers(known: dict | None) -> dict[str, str]:
    if not known or known.get("links_truncated"):
        return {}
    headers = {}
    if isinstance(known.get("etag"), str) and known["etag"]:
        headers["If-None-Match"] = known["etag"]
    if isinstance(known.get("last_modified"), str) and known["last_modified"]:
        headers["If-Modified-Since"] = known["last_modified"]
    return headers


def _http_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _status_reason(status: int, url: str) -> str:
    try:
        phrase = httpx.codes(status).phrase
    except ValueError:
        phrase = ""
    shown = f"HTTP {status} {phrase}".strip()
    if status in (401, 403):
        return f"The server refused access to the page ({shown}); the crawler does not log in."
    if status == 429:
        return f"The server asked to slow down ({shown}), even after retries; set a request delay."
    if status >= 500:
        return f"The server failed to answer ({shown})."
    if 300 <= status < 400:
        return f"The server answered {shown} without a usable redirect."
    return f"The server answered {shown}."


# --- the source ------------------------------------------------------------------------------------


def _valid_start_url(value: str) -> str:
    value = str(value).strip()
    normalized = normalize_url(value)
    if normalized is None:
        if "@" in value.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError(f"{value} has a user name or password in it; credentials are not supported")
        raise ValueError(f"{value or '(empty)'} is not an http:// or https:// address with a host")
    return normalized


class WebSource(Source):
    kind = "web"
    label = "Web site"

    #: Seconds before the first retry of a failed request; doubled for the next.
    RETRY_BACKOFF_S = 1.0

    class Config(SourceConfig):
        #: Where the crawl starts (read even when the patterns would exclude them).
        start_urls: list[str] = Field(default_factory=list, max_length=100)
        #: A sitemap (or sitemap index, optionally gzip-compressed) listing pages to read.
        sitemap_url: str | None = None
        #: Only follow links to the hosts of the start URLs and the sitemap.
        same_site: bool = True
        #: Regexes searched in each link's URL: follow only matching links (empty: all) ...
        include_patterns: list[str] = Field(default_factory=list, max_length=100)
        #: ... and never links matching these.
        exclude_patterns: list[str] = Field(default_factory=list, max_length=100)
        #: Links followed from a start URL or sitemap entry (0: only those pages).
        max_depth: int = Field(default=3, ge=0, le=100)
        #: Requests per crawl; a crawl that stops at the limit deletes nothing.
        max_pages: int = Field(default=500, ge=1, le=1_000_000)
        respect_robots: bool = True
        #: Hosts ("intranet.example.com", "10.0.0.5", "wiki.local:8080") that may be reached
        #: although they resolve to private or loopback addresses.
        allowed_private_hosts: list[str] = Field(default_factory=list, max_length=100)
        #: Seconds between requests (robots.txt's Crawl-delay is honoured when longer).
        request_delay_s: float = Field(default=0.0, ge=0.0, le=60.0)
        timeout_s: float = Field(default=20.0, gt=0.0, le=300.0)
        max_page_bytes: int = Field(default=10_000_000, ge=1024, le=500_000_000)

        @field_validator("start_urls")
        @classmethod
        def _start_urls(cls, value: list[str]) -> list[str]:
            normalized = [_valid_start_url(url) for url in value if str(url).strip()]
            return list(dict.fromkeys(normalized))

        @field_validator("sitemap_url")
        @classmethod
        def _sitemap_url(cls, value: str | None) -> str | None:
            if value is None or not str(value).strip():
                return None
            return _valid_start_url(value)

        @field_validator("include_patterns", "exclude_patterns")
        @classmethod
        def _patterns(cls, value: list[str]) -> list[str]:
            patterns = []
            for pattern in value:
                if not pattern.strip():
                    continue
                if len(pattern) > 500:
                    raise ValueError("a pattern may be at most 500 characters long")
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
                patterns.append(pattern)
            return patterns

        @field_validator("allowed_private_hosts")
        @classmethod
        def _hosts(cls, value: list[str]) -> list[str]:
            hosts = []
            for entry in value:
                entry = entry.strip()
                if not entry:
                    continue
                if not normalize_allowed_hosts([entry]) or any(ch.isspace() for ch in entry):
                    raise ValueError(f"{entry!r} is not a host name, an IP address or host:port")
                hosts.append(entry)
            return hosts

        @model_validator(mode="after")
        def _something_to_crawl(self):
            if not self.start_urls and not self.sitemap_url:
                raise ValueError("give at least one start URL or a sitemap URL")
            return self

    config: Config

    def __init__(self, config: Config):
        super().__init__(config)
        self._last_crawl: _Crawl | None = None
        self._sitemap_cache: list[str] | None = None

    def _client(self) -> SafeClient:
        return SafeClient(
            allowed_hosts=self.config.allowed_private_hosts,
            timeout=self.config.timeout_s,
            max_bytes=self.config.max_page_bytes,
        )

    # --- the Source interface -------------------------------------------------------------
    def check(self) -> str:
        config = self.config
        with self._client() as client:
            crawl = _Crawl(self, client, None)
            for url in config.start_urls:
                try:
                    rules = crawl.robots_for(url) if config.respect_robots else RobotsRules()
                    if not rules.allows(url) and not rules.disallow_all:
                        raise SourceError(
                            f"robots.txt of {_origin(url)} does not allow AssistantBot to read {url}. Ask the "
                            "site's owner to allow it, or choose another start URL."
                        )
                    # When robots.txt could not be read, the page's own answer says more.
                    page = crawl.request(url, {})
                    if rules.disallow_all:
                        raise SourceError(
                            f"{_origin(url)}/robots.txt could not be read ({rules.problem}), so the site "
                            "would not be crawled; try again later.",
                            permanent=False,
                        )
                except RedirectRefused as exc:
                    raise SourceError(
                        f"{url} redirects to {exc.location}, which this crawl does not follow (another site, "
                        "excluded, or disallowed by robots.txt). Use that address as the start URL"
                        + (", or turn off 'same site'." if config.same_site else ".")
                    ) from None
                except FetchError as exc:
                    raise SourceError(f"{url}: {exc}", permanent=not exc.transient) from None
                if page.status_code >= 400 or page.status_code == 304:
                    transient = page.status_code >= 500 or page.status_code == 429
                    raise SourceError(f"{url}: {_status_reason(page.status_code, url)}", permanent=not transient)
            parts = []
            if config.start_urls:
                count = len(config.start_urls)
                parts.append(f"{count} start URL{'s' if count != 1 else ''} reachable")
            if config.sitemap_url:
                try:
                    urls = self._read_sitemaps(crawl)
                except FetchError as exc:
                    raise SourceError(
                        f"The sitemap {config.sitemap_url} could not be read: {exc}", permanent=not exc.transient
                    ) from None
                parts.append(f"the sitemap lists {len(urls)} page{'s' if len(urls) != 1 else ''}")
        return "; ".join(parts)

    def list_ids(self) -> set[str]:
        """The pages the last complete crawl of this object reached (the web has no listing)."""
        crawl = self._last_crawl
        if crawl is None:
            raise SourceError(
                "A web site has no listing: which pages exist is known only after a complete crawl, and none "
                "finished here, so it is unknown which pages were removed; deletions are skipped.",
                permanent=False,
            )
        if crawl.truncated:
            raise SourceError(
                f"The crawl stopped at the page limit ({self.config.max_pages} pages), so pages beyond it were not "
                "visited; deletions are skipped. Raise the page limit to let removed pages be deleted.",
                permanent=False,
            )
        if crawl.problems:
            shown = "; ".join(crawl.problems[:3])
            if len(crawl.problems) > 3:
                shown += f"; and {len(crawl.problems) - 3} more"
            raise SourceError(
                f"Parts of the site could not be crawled ({shown}); deletions are skipped.", permanent=False
            )
        return set(crawl.present)

    def iter_documents(
        self, since: dict | None = None, previous: Mapping[str, dict] | None = None
    ) -> Iterator[SourceItem]:
        """Crawl the site breadth-first. With `previous` (metadata stored per page), pages
        are requested conditionally and unchanged ones reported as ItemUnchanged."""
        self._last_crawl = None
        with self._client() as client:
            crawl = _Crawl(self, client, previous)
            sitemap_urls: list[str] = []
            if self.config.sitemap_url:
                try:
                    sitemap_urls = self._read_sitemaps(crawl)
                except FetchError as exc:
                    if not self.config.start_urls:
                        raise SourceError(
                            f"The sitemap {self.config.sitemap_url} could not be read: {exc}",
                            permanent=not exc.transient,
                        ) from None
                    crawl.problems.append(f"the sitemap {self.config.sitemap_url} could not be read ({exc})")
            self._sitemap_cache = None
            yield from crawl.run(sitemap_urls)
        self._last_crawl = crawl

    def fetch(self, external_ids: Iterable[str]) -> Iterator[SourceItem]:
        """Read these pages again, without following their links."""
        with self._client() as client:
            crawl = _Crawl(self, client, None, follow_links=False)
            for external_id in external_ids:
                url = normalize_url(external_id)
                if url is None:
                    yield ItemFailure(external_id, "Not an http:// or https:// address.")
                    continue
                if url in crawl.handled:
                    continue
                if not (url in crawl.start_urls or crawl.in_scope(url)) or not crawl.robots_allow(url):
                    logger.info("not fetching %s: outside the crawl or disallowed by robots.txt", url)
                    continue
                yield from crawl.visit(url, self.config.max_depth)

    def estimated_total(self) -> int | None:
        """The number of pages the sitemap lists (within the page limit), when there is one."""
        if not self.config.sitemap_url:
            return None
        try:
            with self._client() as client:
                crawl = _Crawl(self, client, None)
                urls = self._read_sitemaps(crawl)
        except (FetchError, SourceError):
            return None
        in_scope = {u for u in (normalize_url(url) for url in urls) if u and crawl.in_scope(u)}
        return min(len(in_scope | set(self.config.start_urls)), self.config.max_pages)

    # --- sitemaps ---------------------------------------------------------------------------
    def _read_sitemaps(self, crawl: _Crawl) -> list[str]:
        """Page URLs of the sitemap and the sitemaps it lists (cached for this object).
        The top sitemap failing raises FetchError; a nested one failing is a crawl problem."""
        if self._sitemap_cache is not None:
            return self._sitemap_cache
        top = self.config.sitemap_url
        assert top is not None
        pending = deque([top])
        done: set[str] = set()
        pages: list[str] = []
        while pending and len(done) < MAX_SITEMAPS and len(pages) < MAX_SITEMAP_URLS:
            url = pending.popleft()
            if url in done:
                continue
            done.add(url)
            try:
                response = crawl.with_retries(lambda url=url: crawl.client.get(url, max_bytes=SITEMAP_MAX_BYTES))
                if response.status_code != 200:
                    raise FetchError(_status_reason(response.status_code, url), url=url)
                found, nested = _sitemap_entries(response.content)
            except FetchError as exc:
                if url == top:
                    raise
                crawl.problems.append(f"the sitemap {url} could not be read ({exc})")
                continue
            pages.extend(found[: MAX_SITEMAP_URLS - len(pages)])
            pending.extend(n for n in (normalize_url(n) for n in nested) if n)
        if pending:
            crawl.problems.append(f"only the first {MAX_SITEMAPS} sitemaps were read")
        self._sitemap_cache = pages
        return pages

