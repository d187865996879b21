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

from connectors.sources.web.robots import RobotsRules
from connectors.sources.web.source import WebSource
from connectors.sources.web.urls import normalize_url

__all__ = ["RobotsRules", "WebSource", "normalize_url"]
