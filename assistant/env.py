"""Typed reads of environment variables that fail loudly on bad values.

Every setting of the project comes from the environment (documented in
.env.example); a value that cannot be parsed stops start-up with a message
naming the variable and what it expects, instead of limping on a default.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from connectors.safe_http import normalize_allowed_hosts

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"Set the environment variable {name} (see .env.example).")
        return default
    return value


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}.")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}.")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}.")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str) -> tuple:
    """Comma-separated IP addresses or CIDR networks -> ip_network objects; "*" means every address."""
    import ipaddress

    networks = []
    for item in env_list(name, []):
        if item == "*":
            return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or networks (e.g. 10.0.0.5,172.16.0.0/12) or *, got {item!r}."
            ) from None
    return tuple(networks)


def env_parsed(name: str, default: str, parse):
    """`parse(value)` of the variable (or of `default`); its ValueError stops start-up, naming the variable."""
    raw = env_str(name, default)
    try:
        return parse(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} {exc}.") from None


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


_RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """A rate limit "<count>/<window>" such as 20/m, 5/15m, 100/h -> (count, seconds); "off" -> None."""
    import re

    raw = env_str(name, default)
    if raw.strip().lower() in ("off", "none", "0"):
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*", raw)
    if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < 1):
        raise ImproperlyConfigured(
            f"{name} must look like 20/m, 5/15m or 100/h (count/window in s, m, h or d), or off; got {raw!r}."
        )
    return int(match.group(1)), int(match.group(2) or 1) * _RATE_UNITS[match.group(3)]


def env_folders(name: str, default: str, *, base: Path) -> list[str]:
    """Folders (comma- or os.pathsep-separated, relative to `base`) as absolute real paths;
    "/" is refused: it would let connectors read every file."""
    roots = []
    for item in re.split(rf"[,{re.escape(os.pathsep)}]", env_str(name, default)):
        if not item.strip():
            continue
        path = os.path.realpath(base / item.strip())
        if path == os.path.realpath("/"):
            raise ImproperlyConfigured(f"{name} must not include / (it would let connectors read every file).")
        roots.append(path)
    return roots


def env_hosts(name: str) -> list[str]:
    """Host names or IP addresses, each optionally host:port."""
    hosts = env_list(name, [])
    for host in hosts:
        if any(ch.isspace() or ch in "/@" for ch in host) or not normalize_allowed_hosts([host]):
            raise ImproperlyConfigured(f"{name}: {host!r} is not a host name, an IP address or host:port.")
    return hosts
