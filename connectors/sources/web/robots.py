"""robots.txt (RFC 9309): groups for our product token, longest match, `*` and `$`, Crawl-delay."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from connectors.safe_http import ROBOTS_AGENT

ROBOTS_MAX_BYTES = 512 * 1024


MAX_CRAWL_DELAY_S = 30.0


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
