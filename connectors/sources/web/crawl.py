"""The breadth-first crawl itself: a queue of pages, conditional requests, retries, robots and links."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from connectors.safe_http import FetchError, RedirectRefused, SafeClient, SafeResponse
from connectors.sources.base import ItemFailure, ItemUnchanged, Source, SourceDocument, SourceItem
from connectors.sources.web.urls import (
    HTML_MEDIA_TYPES,
    _SKIPPED_EXTENSIONS,
    _extension,
    _media_type,
    _origin,
    _site_key,
    normalize_url,
)
from connectors.sources.web.html import MAX_LINKS_PER_PAGE, _HtmlFacts, _header_directives, _parse_html
from connectors.sources.web.robots import MAX_CRAWL_DELAY_S, ROBOTS_MAX_BYTES, RobotsRules

logger = logging.getLogger(__name__)


MAX_STORED_LINKS = 500


MAX_RETRY_AFTER_S = 30.0


RETRIES = 2


RETRY_STATUSES = frozenset({429, 502, 503, 504})


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

    def __init__(self, source: Source, client: SafeClient, previous: Mapping[str, dict] | None,
                 *, follow_links: bool = True):
        self.source = source
        self.config = source.config  # WebSource.Config
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
