"""What a crawl reads from an HTML page: text for the index, links, canonical URL, robots directives."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import httpx
from bs4 import BeautifulSoup

from connectors.safe_http import ROBOTS_AGENT
from connectors.sources.web.urls import _join, normalize_url

logger = logging.getLogger(__name__)


MAX_LINKS_PER_PAGE = 5000


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
