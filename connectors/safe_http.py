"""Guarded HTTP fetching for every URL the project reads on an admin's or a user's behalf.

A URL typed into a connector must not become a way to reach the services next to the
server (the cloud metadata endpoint, the database, an admin console on localhost). So:

- only http and https;
- the host is resolved and refused when ANY of its addresses is loopback, private,
  link-local, multicast, reserved, unspecified or otherwise not a public address
  (IPv4-mapped, 6to4 and NAT64 IPv6 forms are unwrapped and judged by their IPv4 address),
  unless the admin listed the host (name or IP, optionally with ":port") as allowed;
- redirects are followed here, not by httpx, and every hop is checked the same way;
- DNS rebinding: the check is repeated inside the transport at connect time, and the
  socket is opened to the very address that was checked (TLS still uses the host name for
  SNI and certificate verification, and the Host header is unchanged), so a name that
  answers a public address to the check and a private one to the connection cannot slip
  through;
- environment proxies are ignored (trust_env=False): through a proxy the connect-time
  check would judge the proxy, not the target;
- responses are streamed and reading stops past `max_bytes`; there is a per-operation
  timeout and an overall deadline per request.

    with SafeClient(allowed_hosts={"intranet.example.com"}, timeout=20, max_bytes=10_000_000) as client:
        page = client.get("https://intranet.example.com/handbook")   # SafeResponse
        with client.stream(url) as response:                           # headers first, then
            body = client.read(response)                                # a bounded body

Every refusal or network failure raises a FetchError subclass whose message is plain
words for an admin; `transient` tells whether trying again later may help.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import httpcore
import httpx

logger = logging.getLogger(__name__)

USER_AGENT = "AssistantBot/0.1 (+self-hosted enterprise assistant)"
#: The product token robots.txt rules are matched against.
ROBOTS_AGENT = "AssistantBot"

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Error bodies (4xx/5xx) are read at most this far; they are rarely useful.
ERROR_BODY_BYTES = 64 * 1024
_CONDITIONAL = ("if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range")
_CREDENTIALS = ("authorization", "cookie", "proxy-authorization")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- errors -----------------------------------------------------------------------------------


class FetchError(Exception):
    """A URL could not be fetched; the message says why in plain words."""

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None, url: str = ""):
        super().__init__(message)
        self.url = url
        if transient is not None:
            self.transient = transient


class BlockedAddress(FetchError):
    """The URL is not allowed: a scheme other than http(s), or a host with a non-public address."""


class HostNotFound(FetchError):
    """The host name does not resolve (DNS)."""


class ResponseTooLarge(FetchError):
    """The response body is larger than the limit."""


class TooManyRedirects(FetchError):
    """More redirects than allowed, or a redirect loop."""


class RedirectRefused(FetchError):
    """The caller's redirect policy refused the target (e.g. another site); `location` holds it."""

    def __init__(self, message: str, *, location: str, url: str = ""):
        super().__init__(message, url=url)
        self.location = location


class NetworkError(FetchError):
    """Connection refused, timeout, TLS failure, broken response: usually worth a retry."""

    transient = True


# --- address checks --------------------------------------------------------------------------


def address_problem(ip: IPAddress) -> str | None:
    """Why connecting to this address is refused, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, form = None, ""
        if ip.ipv4_mapped is not None:
            embedded, form = ip.ipv4_mapped, "an IPv4-mapped"
        elif ip.sixtofour is not None:
            embedded, form = ip.sixtofour, "a 6to4"
        elif ip in _NAT64:
            embedded, form = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "a NAT64"
        if embedded is not None:
            inner = address_problem(embedded)
            if inner:
                return f"{form} form of {embedded}, {inner}"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a public internet address"
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _split_host_port(entry: str) -> tuple[str, int | None]:
    """'Host:8080' → ('host', 8080); '[::1]:80' → ('::1', 80); 'fd00::1' → ('fd00::1', None)."""
    entry = entry.strip().lower()
    if "://" in entry:  # an admin pasted a URL: keep its host[:port]
        entry = entry.split("://", 1)[1]
    entry = entry.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:  # a name, an IPv4 address or a bare IPv6 address
        host, port = entry, ""
    host = host.rstrip(".")
    return host, int(port) if port.isdigit() else None


def normalize_allowed_hosts(hosts: Iterable[str]) -> frozenset[tuple[str, int | None]]:
    """Admin-entered host entries as (host, port or None) pairs, for `is_allowed_host`."""
    normalized = set()
    for entry in hosts:
        host, port = _split_host_port(str(entry))
        if host:
            normalized.add((_canonical_host(host), port))
    return frozenset(normalized)


def _as_entries(allowed) -> frozenset[tuple[str, int | None]]:
    if isinstance(allowed, frozenset) and all(isinstance(entry, tuple) for entry in allowed):
        return allowed  # already normalized
    return normalize_allowed_hosts(allowed)


def _canonical_host(host: str) -> str:
    """Lower-case, no brackets or trailing dot, IDNA-encoded, IPv6 compressed."""
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def is_allowed_host(host: str, port: int, allowed: Iterable[str] | frozenset[tuple[str, int | None]]) -> bool:
    """True when the admin listed this host (any port) or this host:port."""
    entries = _as_entries(allowed)
    name = _canonical_host(host)
    return (name, None) in entries or (name, port) in entries


def _allow_hint(host: str) -> str:
    return (
        f'If {host} is an intranet site you trust, add "{host}" to the allowed private hosts '
        "(or host:port to allow one port only)."
    )


def resolve_checked(host: str, port: int, *, allowed_hosts: Iterable[str] = ()) -> list[str]:
    """The addresses `host` resolves to, all of them public; raise BlockedAddress or HostNotFound.

    An allowed host is not judged; its resolved addresses are returned as they are.
    """
    name = _canonical_host(host)
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        transient = exc.errno == socket.EAI_AGAIN
        raise HostNotFound(
            f"The host name {host} could not be resolved (DNS: {exc.strerror or exc}).", transient=transient
        ) from None
    except (UnicodeError, ValueError) as exc:
        raise HostNotFound(f"The host name {host} is not valid ({exc}).") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise HostNotFound(f"The host name {host} has no addresses.")
    if is_allowed_host(host, port, allowed_hosts):
        return addresses
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise BlockedAddress(
                f"Refused to connect to {host}: it resolves to {address!r}, not an IP address."
            ) from None
        problem = address_problem(ip)
        if problem:
            shown = host if host == address else f"{host} (it resolves to {address})"
            raise BlockedAddress(
                f"Refused to connect to {shown}: {problem}. Requests to loopback, private and link-local "
                f"addresses are blocked so that a URL cannot reach internal services. {_allow_hint(host)}"
            )
    return addresses


def _parse(url: str) -> tuple[httpx.URL, str, int]:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, UnicodeError, TypeError) as exc:
        raise BlockedAddress(f"{url!r} is not a valid URL ({exc}).", url=str(url)) from None
    scheme = parsed.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        shown = f"{scheme}:" if scheme else "a URL without a scheme"
        raise BlockedAddress(f"Only http and https URLs can be fetched, not {shown} ({url}).", url=url)
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise BlockedAddress(f"The URL {url} has no host.", url=url)
    port = parsed.port or DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise BlockedAddress(f"The URL {url} has an invalid port {port}.", url=url)
    return parsed, host, port


def check_url(url: str, *, allowed_hosts: Iterable[str] = ()) -> None:
    """Raise BlockedAddress unless `url` is http(s) and its host resolves only to public
    addresses (or is allowed); raise HostNotFound when it does not resolve. Never connects."""
    _parsed, host, port = _parse(url)
    try:
        resolve_checked(host, port, allowed_hosts=allowed_hosts)
    except FetchError as exc:
        exc.url = url
        raise


# --- the transport: connect to the checked address --------------------------------------------


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves and checks the host at connect time and connects to a checked address."""

    def __init__(self, allowed: frozenset[tuple[str, int | None]]):
        self._inner = httpcore.SyncBackend()
        self._allowed = allowed

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_checked(host, port, allowed_hosts=self._allowed)
        last: Exception | None = None
        for address in addresses:  # the checked addresses, in the resolver's order
            try:
                return self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # pragma: no cover
        raise BlockedAddress("Unix sockets cannot be reached through a URL.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with a connection pool whose sockets go only to checked addresses."""

    def __init__(self, *, allowed_hosts: Iterable[str] = (), verify: ssl.SSLContext | bool = True,
                 limits: httpx.Limits = httpx.Limits(max_connections=10, max_keepalive_connections=5)):
        ssl_context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(
            verify=verify, trust_env=False
        )
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx 0.28 builds its pool in __init__ without a way to pass a network backend;
        # replace it with the same pool plus our backend. Checked so an upgrade fails loudly.
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):  # pragma: no cover
            raise RuntimeError("httpx changed its transport internals; update connectors.safe_http")
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_GuardedBackend(normalize_allowed_hosts(allowed_hosts)),
        )


# --- the client ----------------------------------------------------------------------------------


@dataclass
class SafeResponse:
    """A fully read response: the final URL after redirects, status, headers and body."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes
    #: The URLs that redirected, in order (empty when the first answer was final).
    redirects: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case ("text/html")."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def text(self) -> str:
        charset = "utf-8"
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


class SafeClient:
    """An httpx client that only reaches public addresses (or allowed hosts), follows
    redirects itself checking every hop, and reads bounded bodies."""

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str] = (),
        timeout: float = 20.0,
        max_bytes: int = 10_000_000,
        max_redirects: int = 5,
        total_timeout: float | None = None,
        user_agent: str = USER_AGENT,
        verify: ssl.SSLContext | bool = True,
        headers: dict[str, str] | None = None,
    ):
        self.allowed_hosts = normalize_allowed_hosts(allowed_hosts)
        self.timeout = float(timeout)
        self.max_bytes = int(max_bytes)
        self.max_redirects = int(max_redirects)
        #: Wall-clock limit for one request including its body (a server dripping bytes
        #: never trips the per-read timeout).
        self.total_timeout = float(total_timeout) if total_timeout else max(60.0, self.timeout * 6)
        self._client = httpx.Client(
            transport=GuardedTransport(allowed_hosts=allowed_hosts, verify=verify),
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": user_agent, **(headers or {})},
            trust_env=False,
        )

    # --- life cycle ---
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SafeClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- requests ---
    def check(self, url: str) -> None:
        """check_url with this client's allowed hosts."""
        check_url(url, allowed_hosts=self.allowed_hosts)

    @contextlib.contextmanager
    def stream(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
        redirect_policy: Callable[[str], bool] | None = None,
    ) -> Iterator[httpx.Response]:
        """Send the request, following redirects (each hop checked; `redirect_policy` may
        refuse a target with RedirectRefused), and yield the final response unread.

        Conditional headers (If-None-Match, ...) go with the first request only; credentials
        are dropped when a redirect leaves the origin. `response.history` lists the hops.
        """
        hops: list[httpx.Response] = []
        current = url
        hop_headers = dict(headers or {})
        deadline = time.monotonic() + self.total_timeout
        while True:
            self.check(current)
            request = self._client.build_request(method, current, headers=hop_headers)
            try:
                response = self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise _network_error(exc, current, self.timeout) from exc
            response._safe_deadline = deadline  # read() stops a body that trickles in forever
            if not (follow_redirects and response.status_code in REDIRECT_STATUSES and "location" in response.headers):
                response.history = hops
                try:
                    yield response
                finally:
                    response.close()
                return
            location = response.headers["location"]
            response.close()
            try:
                target = str(response.url.join(location.strip()).copy_with(fragment=None))
            except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
                raise FetchError(f"{current} redirects to an invalid URL {location!r} ({exc}).", url=url) from None
            hops.append(response)
            if len(hops) > self.max_redirects:
                raise TooManyRedirects(
                    f"{url} redirects more than {self.max_redirects} times (last to {target}).", url=url
                )
            if redirect_policy is not None and not redirect_policy(target):
                raise RedirectRefused(
                    f"{current} redirects to {target}, which is not followed.", location=target, url=url
                )
            if response.status_code == 303 or (response.status_code in (301, 302) and method not in ("GET", "HEAD")):
                method = "GET"
            hop_headers = {k: v for k, v in hop_headers.items() if k.lower() not in _CONDITIONAL}
            if _origin(httpx.URL(target)) != _origin(response.url):
                hop_headers = {k: v for k, v in hop_headers.items() if k.lower() not in _CREDENTIALS}
            current = target

    def read(self, response: httpx.Response, *, max_bytes: int | None = None, truncate: bool = False) -> bytes:
        """The (decoded) body, at most `max_bytes`: past it raise ResponseTooLarge, or with
        `truncate` return the first `max_bytes`. Stops reading as soon as the limit is passed."""
        limit = self.max_bytes if max_bytes is None else int(max_bytes)
        where = str(response.url)
        declared = response.headers.get("content-length", "")
        if not truncate and declared.isdigit() and int(declared) > limit and "content-encoding" not in response.headers:
            raise ResponseTooLarge(
                f"{where} is {int(declared):,} bytes, over the limit of {limit:,} bytes.", url=where
            )
        deadline = getattr(response, "_safe_deadline", None) or time.monotonic() + self.total_timeout
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    if truncate:
                        return b"".join(chunks)[:limit]
                    raise ResponseTooLarge(
                        f"{where} is larger than the limit of {limit:,} bytes (reading stopped there).", url=where
                    )
                if time.monotonic() > deadline:
                    raise NetworkError(
                        f"{where} took longer than {self.total_timeout:g} s to send its content.", url=where
                    )
        except httpx.HTTPError as exc:
            raise _network_error(exc, where, self.timeout) from exc
        return b"".join(chunks)

    def get(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        max_bytes: int | None = None,
        truncate: bool = False,
        follow_redirects: bool = True,
        redirect_policy: Callable[[str], bool] | None = None,
    ) -> SafeResponse:
        """GET `url` and read its body (a 2xx body up to the limit, other bodies up to 64 KiB).
        Any status is returned; only refusals and network failures raise."""
        with self.stream(
            url, headers=headers, follow_redirects=follow_redirects, redirect_policy=redirect_policy
        ) as response:
            if 200 <= response.status_code < 300:
                content = self.read(response, max_bytes=max_bytes, truncate=truncate)
            elif response.status_code in (204, 304) or 300 <= response.status_code < 400:
                content = b""
            else:
                content = self.read(response, max_bytes=ERROR_BODY_BYTES, truncate=True)
            return SafeResponse(
                url=str(response.url),
                status_code=response.status_code,
                headers=response.headers,
                content=content,
                redirects=[str(hop.url) for hop in response.history],
            )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme)


def _network_error(exc: httpx.HTTPError, url: str, timeout: float) -> FetchError:
    """A plain-words FetchError for an httpx failure."""
    try:
        host = httpx.URL(url).host or url
    except Exception:  # noqa: BLE001 - only for the message
        host = url
    text = str(exc) or exc.__class__.__name__
    lowered = text.lower()
    if isinstance(exc, httpx.ConnectTimeout):
        message = f"Connecting to {host} timed out after {timeout:g} s."
    elif isinstance(exc, httpx.TimeoutException):
        message = f"{host} did not answer within {timeout:g} s."
    elif isinstance(exc, httpx.ConnectError):
        if "certificate" in lowered or "ssl" in lowered or "tls" in lowered:
            return NetworkError(
                f"The secure connection to {host} failed: {text}. Check the site's TLS certificate.",
                transient=False, url=url,
            )
        if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
            return HostNotFound(f"The host name {host} could not be resolved ({text}).", url=url)
        if "refused" in lowered:
            message = f"{host} refused the connection (is the site up, and is the port right?)."
        elif "unreachable" in lowered:
            message = f"{host} cannot be reached from this server (network unreachable)."
        else:
            message = f"Could not connect to {host}: {text}."
    elif isinstance(exc, httpx.RemoteProtocolError):
        message = f"{host} closed the connection or sent an invalid HTTP response ({text})."
    elif isinstance(exc, httpx.DecodingError):
        return FetchError(f"The response from {host} could not be decoded ({text}).", url=url)
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return BlockedAddress(f"{url} cannot be fetched: {text}.", url=url)
    else:
        message = f"Network error talking to {host}: {text}."
    return NetworkError(message, url=url)
