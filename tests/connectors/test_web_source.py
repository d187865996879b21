"""The web source and the guarded HTTP client, against a real local web server.

Traffic goes only to the 127.0.0.1 server started here. "Outside" links use .invalid
host names, which are asserted never to be resolved; address checks for other addresses
use check_url, which resolves (IP literals and "localhost" only) but never connects.
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connectors import safe_http
from connectors.safe_http import (
    BlockedAddress,
    ResponseTooLarge,
    SafeClient,
    TooManyRedirects,
    address_problem,
    check_url,
)
from connectors.sources.base import ItemFailure, ItemUnchanged, SourceDocument, SourceError
from connectors.sources.registry import SOURCES, build_source
from connectors.sources.web import RobotsRules, WebSource, normalize_url

PDF = (Path(__file__).resolve().parents[2] / "samples" / "handbook" / "travel-policy.pdf").read_bytes()
LAST_MODIFIED = "Mon, 06 Jan 2025 10:00:00 GMT"


# --- the site ------------------------------------------------------------------------------------


@dataclass
class Site:
    base: str = ""
    port: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    version: int = 1  # of /changing.html
    counters: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests]

    def headers_of(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [headers for p, headers in self.requests if p == path]

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()


def page(title: str, *links: str, head: str = "", text: str = "") -> bytes:
    anchors = "".join(f'<a href="{href}">link</a> ' for href in links)
    return (
        f"<!doctype html><html><head><title>{title}</title>{head}</head>"
        f"<body><h1>{title}</h1><p>{text or 'Text of ' + title}.</p>{anchors}</body></html>"
    ).encode()


def routes(site: Site) -> dict[str, tuple[int, str, bytes, dict[str, str]]]:
    """path -> (status, content type, body, extra headers)."""
    html = "text/html; charset=utf-8"
    index = page(
        "Home",
        "/a.html", "/a.html?ref=nav", "/a.html#top", "/private/secret.html", "/handbook.pdf", "/missing.html",
        "http://other.invalid/page", "/redirect-local", "/redirect-blocked", "/logo.png", "/download",
        "/noindex.html", "/changing.html", "/wrong-canonical.html", "mailto:hr@example.invalid", "javascript:void(0)",
        head='<link rel="stylesheet" href="/style.css">',
        text='Welcome <a rel="nofollow" href="/nofollow-target.html">not followed</a>',
    )  # fmt: skip
    canonical = '<link rel="canonical" href="/a.html">'
    return {
        "/robots.txt": (200, "text/plain", b"User-agent: *\nDisallow: /private/\n", {}),
        "/": (200, html, index, {}),
        "/a.html": (200, html, page("Page A", "/b.html", head=canonical), {}),
        "/a.html?ref=nav": (200, html, page("Page A", "/b.html", head=canonical), {}),
        "/b.html": (200, html, page("Page B", "/c.html"), {}),
        "/c.html": (200, html, page("Page C", "/d.html"), {}),
        "/d.html": (200, html, page("Page D"), {}),
        "/private/secret.html": (200, html, page("Secret"), {}),
        "/handbook.pdf": (200, "application/pdf", PDF, {"_no_etag": "1"}),
        "/redirect-local": (302, html, b"", {"Location": "/target.html"}),
        "/target.html": (200, html, page("Target"), {}),
        "/redirect-blocked": (302, html, b"", {"Location": f"http://localhost:{site.port}/secret-internal"}),
        "/secret-internal": (200, html, page("Internal"), {}),
        "/loop": (302, html, b"", {"Location": "/loop2"}),
        "/loop2": (302, html, b"", {"Location": "/loop"}),
        "/download": (200, "application/zip", b"PK\x03\x04" + b"\0" * 100, {}),
        "/logo.png": (200, "image/png", b"\x89PNG", {}),
        "/noindex.html": (
            200, html, page("Hidden", "/only-from-noindex.html", head='<meta name="robots" content="noindex">'), {}
        ),
        "/only-from-noindex.html": (200, html, page("Reached through a noindex page"), {}),
        # A CMS that names the home page as every page's canonical: the page is no copy of it.
        "/wrong-canonical.html": (200, html, page("Own content", head='<link rel="canonical" href="/">'), {}),
        "/nofollow-target.html": (200, html, page("Nofollow"), {}),
        "/changing.html": (200, html, page(f"Changing v{site.version}"), {}),
        "/big.html": (200, html, page("Big", text="x" * 5000), {}),
        "/notes.txt": (200, "text/plain; charset=utf-8", b"Plain notes.", {}),
        "/sitemap.xml": (
            200, "application/xml",
            b'<?xml version="1.0" encoding="UTF-8"?>'
            b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<sitemap><loc>/sitemap-pages.xml</loc></sitemap></sitemapindex>".replace(
                b"/sitemap-pages.xml", f"{site.base}/sitemap-pages.xml".encode()
            ),
            {},
        ),  # fmt: skip
        "/sitemap-pages.xml": (
            200, "application/xml",
            (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<url><loc>{site.base}/from-sitemap.html</loc></url>"
                f"<url><loc>{site.base}/notes.txt</loc></url>"
                "<url><loc>http://other.invalid/listed</loc></url>"
                "</urlset>"
            ).encode(),
            {},
        ),  # fmt: skip
        "/from-sitemap.html": (200, html, page("From the sitemap", "/a.html"), {}),
    }


def make_handler(site: Site):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            with site.lock:
                site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                count = site.counters[self.path] = site.counters.get(self.path, 0) + 1
            if self.path == "/flaky.html" and count <= 2:
                return self._send(503, "text/plain", b"busy", {"Retry-After": "0"})
            if self.path == "/always-503.html":
                return self._send(503, "text/plain", b"down", {})
            if self.path == "/flaky.html":
                return self._send(200, "text/html", page("Flaky but fine"), {})
            if self.path == "/big-stream.html":
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    for _ in range(100):
                        self.wfile.write(b"<p>" + b"y" * 1000 + b"</p>")
                except OSError:
                    pass  # the client stopped reading: that is the point
                return
            route = routes(site).get(self.path)
            if route is None:
                return self._send(404, "text/html", b"<h1>Not found</h1>", {})
            status, ctype, body, extra = route
            return self._send(status, ctype, body, extra)

        def _send(self, status: int, ctype: str, body: bytes, extra: dict[str, str]) -> None:
            extra = dict(extra)
            etag = None if extra.pop("_no_etag", None) or status != 200 else f'"{hashlib.sha1(body).hexdigest()[:16]}"'
            if status == 200:
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                if (etag and inm == etag) or (
                    not inm and ims and email.utils.parsedate_to_datetime(ims)
                    >= email.utils.parsedate_to_datetime(LAST_MODIFIED)
                ):
                    self.send_response(304)
                    if etag:
                        self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if status == 200:
                self.send_header("Last-Modified", LAST_MODIFIED)
                if etag:
                    self.send_header("ETag", etag)
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # the client hanging up on a too-large page is expected


@pytest.fixture
def site() -> Iterator[Site]:
    state = Site()
    server = QuietServer(("127.0.0.1", 0), make_handler(state))
    state.port = server.server_address[1]
    state.base = f"http://127.0.0.1:{state.port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def resolved(monkeypatch) -> list[str]:
    """Every host name the code under test resolves (to prove .invalid hosts are never looked up)."""
    names: list[str] = []
    real = socket.getaddrinfo

    def spy(host, *args, **kwargs):
        names.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(safe_http.socket, "getaddrinfo", spy)
    return names


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(WebSource, "RETRY_BACKOFF_S", 0.01)


def web(site: Site, **options) -> WebSource:
    options.setdefault("start_urls", [site.base + "/"])
    options.setdefault("allowed_private_hosts", [site.host])
    return WebSource(WebSource.Config(**options))


def crawl(source: WebSource, previous=None) -> list:
    return list(source.iter_documents(previous=previous))


def by_type(items, kind) -> dict:
    return {item.external_id: item for item in items if isinstance(item, kind)}


def u(site: Site, path: str) -> str:
    return site.base + path


# --- the crawl -------------------------------------------------------------------------------------


def test_it_crawls_the_site_breadth_first_within_depth_robots_and_scope(site, resolved):
    source = web(site)
    items = crawl(source)
    docs = by_type(items, SourceDocument)
    assert set(docs) == {
        u(site, p)
        for p in ("/", "/a.html", "/b.html", "/c.html", "/handbook.pdf", "/target.html",
                  "/only-from-noindex.html", "/changing.html", "/wrong-canonical.html")
    }  # fmt: skip
    assert [i.external_id for i in items if isinstance(i, ItemFailure)] == [u(site, "/missing.html")]
    assert "not found" in by_type(items, ItemFailure)[u(site, "/missing.html")].reason
    assert not by_type(items, ItemUnchanged)

    requested = site.paths()
    assert requested[0] == "/robots.txt" and requested.count("/robots.txt") == 1
    assert requested[1] == "/"
    for never in ("/private/secret.html", "/d.html", "/logo.png", "/nofollow-target.html", "/secret-internal",
                  "/style.css"):
        assert never not in requested, never
    assert not [name for name in resolved if name.endswith(".invalid")]
    assert "localhost" not in resolved  # the off-site redirect target was not even resolved
    assert requested.count("/a.html") == 1
    assert len(requested) == len(set(requested))  # nothing fetched twice
    # Breadth first: every depth-1 page before any depth-2 page.
    assert requested.index("/changing.html") < requested.index("/b.html")

    home = docs[u(site, "/")]
    assert home.title == "" and home.url == home.location == home.external_id == u(site, "/")
    assert home.media_type == "text/html; charset=utf-8"
    assert home.metadata["status"] == 200 and home.metadata["content_type"] == "text/html"
    assert home.metadata["etag"] and home.metadata["last_modified"] == LAST_MODIFIED
    assert home.modified_at is not None and home.modified_at.year == 2025
    assert u(site, "/a.html") in home.metadata["links"]
    assert u(site, "/a.html?ref=nav") in home.metadata["links"]
    assert "http://other.invalid/page" in home.metadata["links"]  # stored, never followed
    assert all("#" not in link and not link.startswith("mailto") for link in home.metadata["links"])

    pdf = docs[u(site, "/handbook.pdf")]
    assert pdf.content == PDF and pdf.media_type == "application/pdf"
    assert pdf.metadata["etag"] is None and pdf.metadata["last_modified"] == LAST_MODIFIED

    target = docs[u(site, "/target.html")]
    assert target.metadata["fetched_url"] == u(site, "/redirect-local")


def test_depth_and_page_limits(site):
    docs = by_type(crawl(web(site, max_depth=1)), SourceDocument)
    assert u(site, "/a.html") in docs and u(site, "/b.html") not in docs

    site.reset()
    docs = by_type(crawl(web(site, max_depth=0)), SourceDocument)
    assert set(docs) == {u(site, "/")}

    site.reset()
    source = web(site, max_pages=3)
    crawl(source)
    assert [p for p in site.paths() if p != "/robots.txt"] == ["/", "/a.html", "/a.html?ref=nav"]
    with pytest.raises(SourceError, match="page limit") as info:
        source.list_ids()
    assert info.value.permanent is False


def test_list_ids_is_what_a_complete_crawl_reached(site):
    source = web(site)
    with pytest.raises(SourceError, match="none finished") as info:
        source.list_ids()
    assert info.value.permanent is False

    items = crawl(source)
    assert source.list_ids() == set(by_type(items, SourceDocument))  # the 404 and the noindex page are gone

    partial = web(site)
    iterator = partial.iter_documents()
    next(iterator)
    iterator.close()  # a sync cancelled half-way
    with pytest.raises(SourceError, match="none finished"):
        partial.list_ids()


def test_canonical_link_names_the_page_and_skips_duplicates(site):
    items = crawl(web(site, max_depth=1))
    ids = [item.external_id for item in items]
    assert u(site, "/a.html?ref=nav") not in ids
    assert ids.count(u(site, "/a.html")) == 1


def test_recrawl_sends_conditional_requests_and_reuses_links_of_unchanged_pages(site):
    first = crawl(web(site))
    previous = {item.external_id: item.metadata for item in first if isinstance(item, SourceDocument)}
    site.version = 2  # /changing.html changes
    site.reset()

    source = web(site)
    second = crawl(source, previous=previous)
    unchanged = set(by_type(second, ItemUnchanged))
    docs = by_type(second, SourceDocument)

    # b and c are reached only through a's links: the stored links kept the crawl going.
    for path in ("/", "/a.html", "/b.html", "/c.html", "/handbook.pdf", "/only-from-noindex.html",
                 "/wrong-canonical.html"):
        assert u(site, path) in unchanged, path
    assert u(site, "/changing.html") in docs
    assert b"Changing v2" in docs[u(site, "/changing.html")].content
    assert u(site, "/missing.html") in by_type(second, ItemFailure)

    assert site.headers_of("/a.html")[0]["if-none-match"] == previous[u(site, "/a.html")]["etag"]
    assert site.headers_of("/handbook.pdf")[0]["if-modified-since"] == LAST_MODIFIED
    assert "if-none-match" not in site.headers_of("/noindex.html")[0]  # never indexed, nothing stored
    assert source.list_ids() == set(docs) | unchanged


def test_sitemap_index_seeds_the_crawl_and_estimates_the_total(site, resolved):
    source = web(site, start_urls=[], sitemap_url=u(site, "/sitemap.xml"), max_depth=0)
    assert source.estimated_total() == 2  # the off-site entry does not count
    items = crawl(source)
    assert set(by_type(items, SourceDocument)) == {u(site, "/from-sitemap.html"), u(site, "/notes.txt")}
    assert site.paths().count("/sitemap.xml") == 1  # read once for the estimate and the crawl
    assert not [name for name in resolved if name.endswith(".invalid")]
    assert source.list_ids() == {u(site, "/from-sitemap.html"), u(site, "/notes.txt")}

    message = web(site, start_urls=[], sitemap_url=u(site, "/sitemap.xml")).check()
    assert "sitemap lists 3 pages" in message


def test_a_sitemap_that_cannot_be_read_stops_a_sitemap_only_crawl(site):
    source = web(site, start_urls=[], sitemap_url=u(site, "/no-sitemap.xml"))
    with pytest.raises(SourceError, match="sitemap"):
        crawl(source)


def test_transient_errors_are_retried_then_reported(site):
    docs = by_type(crawl(web(site, start_urls=[u(site, "/flaky.html")])), SourceDocument)
    assert u(site, "/flaky.html") in docs
    assert site.paths().count("/flaky.html") == 3

    source = web(site, start_urls=[u(site, "/always-503.html")])
    failures = by_type(crawl(source), ItemFailure)
    assert "HTTP 503" in failures[u(site, "/always-503.html")].reason
    assert site.paths().count("/always-503.html") == 3
    with pytest.raises(SourceError, match="could not be crawled"):
        source.list_ids()  # the start URL failed: nothing may be deleted


def test_max_page_bytes_is_enforced(site):
    source = web(site, start_urls=[u(site, "/big.html"), u(site, "/big-stream.html")], max_page_bytes=2048)
    failures = by_type(crawl(source), ItemFailure)
    assert "limit of 2,048 bytes" in failures[u(site, "/big.html")].reason
    assert "limit of 2,048 bytes" in failures[u(site, "/big-stream.html")].reason

    with SafeClient(allowed_hosts={site.host}, max_bytes=2048) as client:
        with pytest.raises(ResponseTooLarge):
            client.get(u(site, "/big-stream.html"))  # no Content-Length: stopped while streaming
        assert len(client.get(u(site, "/big-stream.html"), truncate=True).content) == 2048


# --- the address guard ------------------------------------------------------------------------------


def test_without_the_allowance_a_local_site_is_refused(site):
    source = web(site, allowed_private_hosts=[])
    with pytest.raises(SourceError) as info:
        source.check()
    assert "127.0.0.1" in str(info.value) and "allowed private hosts" in str(info.value)

    items = crawl(source)
    assert [type(item) for item in items] == [ItemFailure]
    assert "loopback" in items[0].reason
    assert site.paths() == []  # not one request reached the server
    with pytest.raises(SourceError):
        source.list_ids()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://localhost/",
        "http://2130706433/",  # 127.0.0.1 written as a number
        "http://192.168.1.1:8080/",
    ],
)
def test_check_url_refuses_private_addresses(url):
    with pytest.raises(BlockedAddress) as info:
        check_url(url, allowed_hosts=set())
    assert "allowed private hosts" in str(info.value)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "gopher://localhost/", "//nohost"])
def test_check_url_refuses_other_schemes(url):
    with pytest.raises(BlockedAddress):
        check_url(url, allowed_hosts=set())


def test_check_url_allows_listed_hosts():
    check_url("http://localhost:8080/x", allowed_hosts={"localhost"})
    check_url("http://LocalHost:8080/x", allowed_hosts={"localhost:8080"})
    check_url("http://127.0.0.1:8080/", allowed_hosts={"127.0.0.1:8080"})
    check_url("http://[::1]:8080/", allowed_hosts={"[::1]:8080"})
    with pytest.raises(BlockedAddress):
        check_url("http://localhost:9090/", allowed_hosts={"localhost:8080"})
    with pytest.raises(BlockedAddress):
        check_url("http://localhost:8080/", allowed_hosts={"127.0.0.1:8080"})  # by name, not by address


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("100.64.0.1", True),  # carrier-grade NAT
        ("224.0.0.1", True),
        ("2002:7f00:1::", True),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", True),  # NAT64 of 10.0.0.1
        ("fe80::1", True),
        ("fd00::1", True),
        ("::", True),
    ],
)
def test_address_classification(address, blocked):
    assert (address_problem(ipaddress.ip_address(address)) is not None) is blocked


def test_redirect_to_a_private_address_is_refused_even_from_an_allowed_host(site):
    with SafeClient(allowed_hosts={site.host}) as client:
        with pytest.raises(BlockedAddress, match="localhost"):
            client.get(u(site, "/redirect-blocked"))
        assert "/secret-internal" not in site.paths()
        assert client.get(u(site, "/redirect-local")).url == u(site, "/target.html")
        with pytest.raises(TooManyRedirects):
            client.get(u(site, "/loop"))

    with SafeClient(allowed_hosts={site.host, f"localhost:{site.port}"}) as client:
        response = client.get(u(site, "/redirect-blocked"))
    assert response.status_code == 200 and response.redirects == [u(site, "/redirect-blocked")]
    assert b"Internal" in response.content

    # In a crawl across sites, the blocked hop is a failure of the page that redirected.
    source = web(site, same_site=False, include_patterns=[r"^http://(127\.0\.0\.1|localhost)[:/]"])
    failures = by_type(crawl(source), ItemFailure)
    assert "localhost" in failures[u(site, "/redirect-blocked")].reason


def test_the_connection_goes_to_the_checked_address(site, monkeypatch):
    """DNS rebinding: even when the pre-check passed, the transport re-checks what it connects to."""
    with SafeClient(allowed_hosts=set()) as client:
        monkeypatch.setattr(client, "check", lambda url: None)  # as if the first lookup said "public"
        with pytest.raises(BlockedAddress, match="loopback"):
            client.get(u(site, "/"))
    assert site.paths() == []

    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):  # a name only this test can resolve
        return real("127.0.0.1" if host == "wiki.invalid" else host, port, *args, **kwargs)

    monkeypatch.setattr(safe_http.socket, "getaddrinfo", fake)
    with SafeClient(allowed_hosts={f"wiki.invalid:{site.port}"}) as client:
        response = client.get(f"http://wiki.invalid:{site.port}/a.html")
    assert response.status_code == 200 and b"Page A" in response.content
    assert site.headers_of("/a.html")[0]["host"] == f"wiki.invalid:{site.port}"  # Host header kept


# --- check(), config and registry -----------------------------------------------------------------------


def test_check_reports_reachable_start_urls_and_plain_errors(site):
    assert web(site).check() == "1 start URL reachable"
    with pytest.raises(SourceError, match="404"):
        web(site, start_urls=[u(site, "/nowhere.html")]).check()
    with pytest.raises(SourceError, match="robots.txt"):
        web(site, start_urls=[u(site, "/private/secret.html")]).check()
    with pytest.raises(SourceError, match="another site"):
        web(site, start_urls=[u(site, "/redirect-blocked")]).check()


def test_check_reports_a_refused_connection(site):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = WebSource(
        WebSource.Config(start_urls=[f"http://127.0.0.1:{port}/"], allowed_private_hosts=[f"127.0.0.1:{port}"])
    )
    with pytest.raises(SourceError, match="refused the connection") as info:
        source.check()
    assert info.value.permanent is False


def test_config_is_validated():
    assert SOURCES["web"] is WebSource and WebSource.label == "Web site"
    source = build_source("web", {"start_urls": ["HTTPS://Intranet.Example.com:443/Docs#x"]})
    assert source.config.start_urls == ["https://intranet.example.com/Docs"]
    for bad, words in [
        ({}, "start URL or a sitemap"),
        ({"start_urls": ["ftp://example.com/"]}, "http"),
        ({"start_urls": ["https://user:pw@example.com/"]}, "password"),
        ({"start_urls": ["https://example.com/"], "include_patterns": ["(unclosed"]}, "regular expression"),
        ({"start_urls": ["https://example.com/"], "max_pages": 0}, "max_pages"),
        ({"start_urls": ["https://example.com/"], "surprise": 1}, "surprise"),
        ({"start_urls": ["https://example.com/"], "allowed_private_hosts": ["two words"]}, "host"),
    ]:
        with pytest.raises(SourceError, match=words):
            build_source("web", bad)


def test_url_normalisation():
    assert normalize_url("HTTP://Example.COM:80/a b?x=1#frag") == "http://example.com/a%20b?x=1"
    assert normalize_url("https://example.com") == "https://example.com/"
    assert normalize_url("https://example.com:8443/x/") == "https://example.com:8443/x/"
    assert normalize_url("http://[::1]:80/") == "http://[::1]/"
    too_long = "https://example.com/" + "x" * 1100
    for bad in ("mailto:a@example.com", "javascript:void(0)", "ftp://example.com/", "/relative", "", too_long):
        assert normalize_url(bad) is None


def test_robots_rules_follow_rfc_9309():
    rules = RobotsRules.parse(
        "User-agent: *\nDisallow: /\n\n"
        "User-agent: AssistantBot\nDisallow: /private/\nAllow: /private/open\nDisallow: /*.pdf$\nCrawl-delay: 2\n"
    )
    assert rules.crawl_delay == 2
    assert rules.allows("http://h/docs/")  # our group, not "*"
    assert not rules.allows("http://h/private/x")
    assert rules.allows("http://h/private/open/x")  # the longer rule wins
    assert not rules.allows("http://h/files/a.pdf")
    assert rules.allows("http://h/files/a.pdf?download=1")
    assert RobotsRules.parse("").allows("http://h/anything")
