"""The Debian Administrator's Handbook as an evaluation corpus: one document per section.

Debian's `debian-handbook` package ships the book as HTML in many languages
(/usr/share/doc/debian-handbook/html/<language>/, e.g. en-US, fr-FR, de-DE, es-ES, it-IT), each
edition with the same structure and the same anchors. Every chapter, appendix, preface and
section becomes a document:

- id: the section's HTML anchor (`sect.apt-update`, or a generated `id-1.9.16.6`), the same in
  every language, so one set of judgments serves every edition;
- title: the heading chain from the chapter down, numbers left out
  ("Maintenance and Updates: The APT Tools › aptitude, apt-get, and apt Commands › Initialization");
- text: the section's own text, its subsections left out (they are documents of their own);
  paragraphs, list items and sidebars (tips, notes) are blocks separated by a blank line,
  command and file listings keep their lines.

Nothing here depends on the language: headings are read from the markup, not from words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lxml import html as lxml_html

from assistant.rag.evaluation.datasets import EvaluationError, JudgedCorpus

HANDBOOK_HTML_ROOT = Path("/usr/share/doc/debian-handbook/html")
DEFAULT_LANGUAGE = "en-US"
QUESTIONS_DIR = Path(__file__).resolve().parents[3] / "docs" / "evaluation" / "debian-handbook"
TITLE_SEPARATOR = " › "

# DocBook divisions that carry a heading and text of their own.
_DIVISIONS = {"chapter", "section", "appendix", "preface", "part", "article", "colophon", "glossary", "bibliography"}
_SKIP_CLASSES = {"toc", "indexterm", "docnav", "titlepage"}
_BLOCKS = {
    "div", "p", "pre", "ul", "ol", "dl", "li", "dt", "dd", "table", "thead", "tbody", "tr", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "br", "figure", "caption",
}
# "6.2.1. ", "A.3. ", "Chapter 6. ", "Chapitre 6. ", "Appendix B. ": a label and a number, then the heading.
_NUMBERING = re.compile(r"^\s*(?:[^\W\d]+\s+)?(?:\d+|[A-Z])(?:\.\d+)*\.?\s+(?=\S)")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Section:
    id: str
    title: str  # the heading chain, TITLE_SEPARATOR between levels
    text: str
    file: str  # the HTML file it was read from


def handbook_html_dir(language: str = DEFAULT_LANGUAGE, root: Path = HANDBOOK_HTML_ROOT) -> Path:
    """The edition's HTML folder; EvaluationError naming what to install when it is missing."""
    language = language.strip()
    if not re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", language):
        raise EvaluationError(f"--language takes a code like en-US or fr-FR; got {language!r}")
    folder = root / language
    if not folder.is_dir():
        available = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        hint = f" (available: {', '.join(available)})" if available else " (install the Debian package debian-handbook)"
        raise EvaluationError(f"No handbook edition at {folder}{hint}")
    return folder


def handbook_sections(folder: Path) -> list[Section]:
    """Every section with text of its own, in the book's file order (index.html's links first)."""
    sections: list[Section] = []
    seen: set[str] = set()
    pages = {path.name: _parse(path) for path in _reading_order(folder)}
    for name, root in pages.items():
        for section in _file_sections(name, root, _chain_above(name, pages)):
            if section.id not in seen:
                seen.add(section.id)
                sections.append(section)
    if not sections:
        raise EvaluationError(f"No handbook sections found in {folder}")
    return sections


def handbook_write_corpus(sections: list[Section], target: Path) -> Path:
    """The sections as a JSON Lines corpus (_id, title, text), written only when it changed."""
    lines = "".join(
        json.dumps({"_id": s.id, "title": s.title, "text": s.text, "file": s.file}, ensure_ascii=False) + "\n"
        for s in sections
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != lines:
        target.write_text(lines, encoding="utf-8")
    return target


# --- reading ---------------------------------------------------------------------------------


def _reading_order(folder: Path) -> list[Path]:
    """The book's pages in the order index.html's table of contents links them, then any others."""
    pages = sorted(p for p in folder.glob("*.html") if p.name != "index.html")
    index = folder / "index.html"
    if not index.is_file():
        return pages
    order: list[str] = []
    for href in _parse(index).xpath("//div[contains(concat(' ', @class, ' '), ' toc ')]//a/@href"):
        name = href.split("#", 1)[0]
        if name and name not in order:
            order.append(name)
    rank = {name: position for position, name in enumerate(order)}
    return sorted(pages, key=lambda p: (rank.get(p.name, len(rank)), p.name))


def _parse(path: Path):
    return lxml_html.fromstring(path.read_bytes())


def _classes(element) -> set[str]:
    return set((element.get("class") or "").split())


def _is_division(element) -> bool:
    return isinstance(element.tag, str) and element.tag == "div" and bool(_classes(element) & _DIVISIONS)


def _chain_above(name: str, pages: dict) -> list[str]:
    """Headings of the divisions that hold a page's top division, read from the pages its
    `<link rel="up">` leads to (a section page's chapter lies in the chapter's page)."""
    chain: list[str] = []
    seen = {name}
    while True:
        ups = pages[name].xpath("//head/link[@rel='up']/@href")
        name = ups[0].split("#", 1)[0] if ups else ""
        if name not in pages or name in seen:
            return chain
        seen.add(name)
        top = next((d for d in pages[name].iter("div") if _is_division(d) and _heading(d) is not None), None)
        if top is None:
            return chain
        chain[:0] = [_heading_text(h) for h in (_heading(d) for d in [*_ancestor_divisions(top), top]) if h is not None]


def _file_sections(name: str, root, above: list[str]) -> list[Section]:
    found = []
    for division in root.iter("div"):
        if not _is_division(division):
            continue
        heading = _heading(division)
        if heading is None:
            continue
        anchor = _anchor(division, heading)
        if not anchor:
            continue
        chain = [*above] + [_heading_text(h) for h in (_heading(d) for d in _ancestor_divisions(division)) if h is not None]
        chain.append(_heading_text(heading))
        text = _own_text(division)
        if text:
            found.append(Section(anchor, TITLE_SEPARATOR.join(t for t in chain if t), text, name))
    return found


def _ancestor_divisions(division) -> list:
    return list(reversed([a for a in division.iterancestors() if _is_division(a)]))


def _heading(division):
    """The division's own heading: the title in its first titlepage child."""
    for child in division:
        if isinstance(child.tag, str) and "titlepage" in _classes(child):
            for element in child.iter("h1", "h2", "h3", "h4", "h5", "h6"):
                return element
            return None
    return None


def _anchor(division, heading) -> str:
    for a in heading.iter("a"):
        if a.get("id"):
            return a.get("id").strip()
    return (division.get("id") or "").strip()


def _heading_text(heading) -> str:
    return _NUMBERING.sub("", _SPACES.sub(" ", heading.text_content()).strip(), count=1)


def _own_text(division) -> str:
    """The division's text without its heading, table of contents and subsections."""
    blocks: list[str] = []
    line: list[str] = []
    for child in division:
        _walk(child, blocks, line, top=True)
    _flush(blocks, line)
    return "\n\n".join(blocks)


def _flush(blocks: list[str], line: list[str]) -> None:
    text = _SPACES.sub(" ", "".join(line)).strip()
    if text:
        blocks.append(text)
    line.clear()


def _walk(element, blocks: list[str], line: list[str], *, top: bool = False) -> None:
    if not isinstance(element.tag, str):  # a comment or processing instruction: only its tail is text
        line.append(element.tail or "")
        return
    skip = _is_division(element) or (_classes(element) & _SKIP_CLASSES and (top or "titlepage" not in _classes(element)))
    if skip:
        line.append(element.tail or "")
        return
    if element.tag == "pre":
        _flush(blocks, line)
        listing = "\n".join(row.rstrip() for row in element.text_content().strip("\n").splitlines())
        if listing.strip():
            blocks.append(listing)
    else:
        block = element.tag in _BLOCKS
        if block:
            _flush(blocks, line)
        line.append(element.text or "")
        for child in element:
            _walk(child, blocks, line)
        if block:
            _flush(blocks, line)
    line.append(element.tail or "")


def handbook_corpus(language: str = DEFAULT_LANGUAGE, *, html_root: Path = HANDBOOK_HTML_ROOT,
                    questions: Path | None = None, work_dir: Path | None = None) -> JudgedCorpus:
    """The edition as a judged corpus: its sections written to `work_dir` (var/evaluation by
    default) as JSON Lines, with the questions and judgments of docs/evaluation/debian-handbook
    (`queries.<language>.jsonl` where a translation exists, else the English `queries.jsonl`)."""
    from django.conf import settings

    questions = questions or QUESTIONS_DIR
    work_dir = work_dir or Path(settings.BASE_DIR) / "var" / "evaluation"
    folder = handbook_html_dir(language, html_root)
    translated = questions / f"queries.{folder.name}.jsonl"
    queries = translated if translated.is_file() else questions / "queries.jsonl"
    qrels = questions / "qrels" / "test.tsv"
    for path in (queries, qrels):
        if not path.is_file():
            raise EvaluationError(f"{path} is missing: the handbook's questions and judgments live in {questions}")
    corpus_file = handbook_write_corpus(handbook_sections(folder), work_dir / f"debian-handbook-{folder.name}.jsonl")
    return JudgedCorpus(f"debian-handbook-{folder.name}", corpus_file, queries, qrels, "test", (str(work_dir),))
