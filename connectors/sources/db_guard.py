"""Where a database source may connect: the web crawler's address rules, plus the product's
own database, which no source may ever reach.

    address = guard_target(host=..., port=..., database=..., user=..., password=...,
                           policy=operator_policy.current())    # or raises TargetRefused

- The host must be a host name or an IP address: a unix socket directory, a path, libpq's
  host lists ("a,b") or abstract sockets ("@name") are refused outright.
- The name is resolved and refused when ANY address is loopback, private, link-local,
  unspecified, multicast or reserved (connectors.safe_http.address_problem, the crawler's
  classification), unless the operator allow-listed the host (CONNECTOR_ALLOWED_DB_HOSTS,
  "host" or "host:port", matched as typed, like the crawler's list).
- The product's own database (Django's DATABASES, given as plain data in the policy) is
  refused whatever the allow-list says: by its name on an allow-listed host or on the same
  server (same port and a shared address, or both on this machine: loopback, a local
  interface's address, the unix socket), and on the same server also when the product's
  account (its user name or its password) would be reused. Another database on that server
  is reachable only when its host is allow-listed.
- The caller connects to the returned address (pinned), not to the name again, so a DNS
  answer that changes between this check and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from connectors.safe_http import address_problem, is_allowed_host, normalize_allowed_hosts
from connectors.sources.operator_policy import OperatorPolicy, ProtectedDatabase

ALLOW_SETTING = "CONNECTOR_ALLOWED_DB_HOSTS"


class TargetRefused(ValueError):
    """The database server may not be used as a source; the message says what to change."""

    #: True when trying again later may help (a DNS failure), False for a policy refusal.
    transient: bool = False
    #: The name does not resolve: not a refusal, the server cannot be found.
    unresolved: bool = False

    def __init__(self, message: str, *, setting: str = "host"):
        super().__init__(message)
        #: The setting to fix (host, database, user or password).
        self.setting = setting


def check_host_syntax(host: str) -> str:
    """`host` when it names a server over TCP; TargetRefused for sockets, paths and lists."""
    host = host.strip()
    if not host:
        raise TargetRefused("must be a host name or IP address, like db.example.com")
    if "/" in host or "\\" in host or host.startswith("@"):
        raise TargetRefused(
            "must be a host name or IP address reached over the network, like db.example.com: "
            "unix sockets and paths are not allowed"
        )
    if "," in host:
        raise TargetRefused("must be one host name or IP address, not a list")
    if not normalize_allowed_hosts([host]) or any(ch.isspace() or ord(ch) < 32 for ch in host) or len(host) > 255:
        raise TargetRefused("must be a host name or IP address, like db.example.com")
    return host


def guard_target(
    *, host: str, port: int, database: str, user: str, password: str, policy: OperatorPolicy
) -> str:
    """The address to connect to for `host`:`port` when the policy allows it; TargetRefused otherwise."""
    host = check_host_syntax(host)
    addresses = _resolve(host, port)
    allowed = is_allowed_host(host, port, policy.allowed_db_hosts)
    if not allowed:
        for address in addresses:
            problem = address_problem(ipaddress.ip_address(address))
            if problem:
                shown = host if host == address else f"{host} (it resolves to {address})"
                raise TargetRefused(
                    f"Refused to connect to {shown}: {problem}. Database sources may not reach loopback, "
                    f"private or link-local addresses unless the operator allows the host: ask them to add "
                    f'"{host}" (or "{host}:{port}") to {ALLOW_SETTING}.'
                )
    for protected in policy.protected_databases:
        _refuse_own_database(host, port, addresses, database, user, password, protected, allowed=allowed)
    return addresses[0]


def _resolve(host: str, port: int) -> list[str]:
    name = host.strip("[]").rstrip(".")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        error = TargetRefused(f"the host name {host} is unknown ({getattr(exc, 'strerror', None) or exc})")
        error.unresolved = True
        error.transient = isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN
        raise error from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise TargetRefused(
                f"Refused to connect to {host}: it resolves to {address!r}, not an IP address."
            ) from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetRefused(f"The host name {host} has no addresses.")
    return addresses


def _refuse_own_database(
    host: str, port: int, addresses: list[str], database: str, user: str, password: str,
    protected: ProtectedDatabase, *, allowed: bool,
) -> None:
    same_server = port == protected.port and _same_server(addresses, protected)
    own_name = bool(protected.name) and database.casefold() == protected.name.casefold()
    if own_name and (same_server or allowed):
        raise TargetRefused(
            f"Database {database} at {host}:{port} is the assistant's own database, which a connector may "
            "never read. Point the connector at a company database instead.",
            setting="database",
        )
    if not same_server:
        return
    if not allowed:
        raise TargetRefused(
            f"{host}:{port} is the server of the assistant's own database. Another database on it may be "
            f'used only when the operator allows the host: ask them to add "{host}" to {ALLOW_SETTING}.'
        )
    if protected.user and user.casefold() == protected.user.casefold():
        raise TargetRefused(
            f"User {user} is the assistant's own database account on {host}:{port}. Give the connector its "
            "own account that may only read the tables it should index.",
            setting="user",
        )
    if protected.password and password == protected.password:
        raise TargetRefused(
            f"The password is the one of the assistant's own database account on {host}:{port}. Give the "
            "connector its own account and password.",
            setting="password",
        )


def _same_server(addresses: Iterable[str], protected: ProtectedDatabase) -> bool:
    targets = [ipaddress.ip_address(address) for address in addresses]
    if not protected.host or protected.host.startswith("/"):
        return any(_is_this_machine(ip) for ip in targets)  # the product talks to a local socket
    try:
        theirs = {ipaddress.ip_address(address) for address in _resolve(protected.host, protected.port)}
    except TargetRefused:
        theirs = set()
    if theirs.intersection(targets):
        return True
    return any(_is_this_machine(ip) for ip in theirs) and any(_is_this_machine(ip) for ip in targets)


def _is_this_machine(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, unspecified (0.0.0.0 reaches local servers) or an address of a local interface."""
    if ip.is_loopback or ip.is_unspecified:
        return True
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        return _is_this_machine(mapped)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(ip), 0))  # succeeds only for an address this machine holds
        return True
    except OSError:
        return False
