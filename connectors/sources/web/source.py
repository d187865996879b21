"""The web site source: its settings, the connection check, the listing and the documents of a crawl."""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping

from pydantic import Field, field_validator, model_validator

from connectors.safe_http import FetchError, RedirectRefused, SafeClient, normalize_allowed_hosts
from connectors.sources.base import ItemFailure, Source, SourceConfig, SourceError, SourceItem
from connectors.sources.web.crawl import _Crawl, _status_reason
from connectors.sources.web.sitemap import MAX_SITEMAPS, MAX_SITEMAP_URLS, SITEMAP_MAX_BYTES, _sitemap_entries
from connectors.sources.web.robots import RobotsRules
from connectors.sources.web.urls import _origin, normalize_url

logger = logging.getLogger(__name__)


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
