"""The Debian Administrator's Handbook as a folder of HTML pages, judged at the page level.

The handbook evaluation set (docs/evaluation/debian-handbook: questions and judgments of the
book's *sections*) is made for a corpus of one document per section, whose titles already hold
the heading chain. To measure what the product itself does with headings, the corpus here is
the book's own HTML pages, read by the product's HTML parser (the page's <title>, its h1-h6):
a section's judgment goes to the page that holds its anchor (`id`), a page taking the best
grade of its sections. Pages not judged for any question are drawn at random (seeded) up to
`pages` in all; every judged page is kept.

    handbook_pages_beir(target) -> target/ with corpus/*.html, queries.jsonl, qrels/test.tsv
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from lxml import html as lxml_html

ROOT = Path(__file__).resolve().parent.parent
HTML = Path("/usr/share/doc/debian-handbook/html/en-US")
QUESTIONS = ROOT / "docs" / "evaluation" / "debian-handbook"


def anchors_by_page(folder: Path) -> dict[str, str]:
    """Every element id of the edition -> the page (file name) that defines it."""
    where: dict[str, str] = {}
    for page in sorted(folder.glob("*.html")):
        for anchor in lxml_html.fromstring(page.read_bytes()).xpath("//@id"):
            where.setdefault(str(anchor), page.name)
    return where


def page_qrels(qrels_file: Path, where: dict[str, str]) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Section judgments as page judgments (best grade per page), and the ids found on no page."""
    pages: dict[str, dict[str, int]] = {}
    unknown = []
    for number, line in enumerate(qrels_file.read_text().splitlines()):
        parts = line.split("\t")
        if number == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue
        query, section, grade = parts[0], parts[1], int(parts[2])
        page = where.get(section)
        if page is None:
            unknown.append(section)
            continue
        judged = pages.setdefault(query, {})
        judged[page] = max(judged.get(page, 0), grade)
    return pages, unknown


def handbook_pages_beir(target: Path, *, pages: int | None = None, queries: int | None = None, seed: int = 0,
                        html: Path = HTML, questions: Path = QUESTIONS) -> Path:
    """Write the page-level BEIR directory (once per size) and return it: the first `queries`
    questions (all by default), the pages judged for them, and other pages up to `pages`
    (default: every page of the book)."""
    target = target.with_name(f"{target.name}-{queries or 'all'}q-{pages or 'all'}p")
    if (target / "qrels" / "test.tsv").is_file():
        return target
    where = anchors_by_page(html)
    qrels, unknown = page_qrels(questions / "qrels" / "test.tsv", where)
    if unknown:
        raise SystemExit(f"{len(unknown)} judged sections are on no page of {html}: {unknown[:5]}")
    asked = [json.loads(line) for line in (questions / "queries.jsonl").read_text().splitlines() if line.strip()]
    asked = [row for row in asked if str(row["_id"]) in qrels][:queries]
    qrels = {str(row["_id"]): qrels[str(row["_id"])] for row in asked}
    judged = sorted({page for per_query in qrels.values() for page in per_query})
    others = sorted(p.name for p in html.glob("*.html") if p.name not in judged)
    if pages is not None:
        others = sorted(random.Random(seed).sample(others, max(0, min(len(others), pages - len(judged)))))
    (target / "corpus").mkdir(parents=True, exist_ok=True)
    (target / "qrels").mkdir(exist_ok=True)
    for name in judged + others:
        shutil.copyfile(html / name, target / "corpus" / name)
    (target / "queries.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in asked))
    lines = [f"{query}\t{page}\t{grade}\n" for query, per_query in qrels.items() for page, grade in per_query.items()]
    (target / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(lines))
    return target
