"""Sitemaps and sitemap indexes (XML, optionally gzipped): page URLs and nested sitemaps."""

from __future__ import annotations

import zlib

from lxml import etree

from connectors.safe_http import FetchError

MAX_SITEMAPS = 50


MAX_SITEMAP_URLS = 100_000


SITEMAP_MAX_BYTES = 50 * 1024 * 1024


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
