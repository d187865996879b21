"""Citations: keep only [n] markers that point to a passage the model was given,
and render the answer as sanitised HTML with citation chips.

Each marker is checked against the sentence it ends: kept if the passage supports
the sentence, dropped if not. Sentences without a marker that one passage clearly
supports are attributed to it; such citations are flagged `inferred`.
"""

from __future__ import annotations

import html
import re
import unicodedata

import nh3
from markdown_it import MarkdownIt

from assistant.rag.retrieval import Passage

MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # apostrophes split elisions: l'entreprise -> l, entreprise
_STOPWORDS_EN = (
    "a an and are as at be but by can do does for from has have how i if in is it its may not of on or our "
    "should so that the their there they this to was we were what when where which who will with you your"
)
# French function words, without accents (words are compared unaccented), with the elided
# forms that apostrophes leave behind (jusqu'à -> jusqu, qu'il -> qu, lorsqu'un -> lorsqu).
_STOPWORDS_FR = (
    "a ai au aussi aux avec avez avoir avons c ca car ce ceci cela ces cet cette chaque comme d dans de "
    "depuis des devez doit doivent dont du elle elles en est et etait ete etre eux il ils j je jusqu l la "
    "le les leur leurs lorsqu lui m ma mais me meme mes moi mon n ne ni nos notre nous on ont ou par pas "
    "peut peuvent peux plus pour pouvez pouvons puisqu qu quand que quel quelle qui s sa sans se selon "
    "ses si soit son sont sous sur t ta te tes toi ton tous tout toute toutes tres tu un une vos votre "
    "vous y"
)
_STOPWORDS = frozenset(_STOPWORDS_EN.split()) | frozenset(_STOPWORDS_FR.split())
#: Words are compared by their first letters: enough to tell words apart, short enough that
#: inflections meet (remboursés / remboursement, bénéficie / bénéficient, employees / employed).
STEM_CHARS = 6
INFERRED_MIN_WORDS = 3
INFERRED_MIN_OVERLAP = 0.6
KEEP_MIN_OVERLAP = 0.25
QUOTE_CHARS = 600

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


def _image_as_link(self, tokens, idx, options, env) -> str:
    """Never load an image an answer points to (it could track the reader or leak data in
    its URL): show a link to it instead, which the reader may open."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env).strip() or "image"
    if not src.lower().startswith(("https://", "http://")):
        return f"Image: {html.escape(alt)}"  # data:, relative or odd URLs: the description only
    return f'<a class="image-link" href="{html.escape(src)}" title="{html.escape(src)}">Image: {html.escape(alt)}</a>'


_markdown.add_render_rule("image", _image_as_link)

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "hr", "sup",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "class", "data-n", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}


def _numbers(group: str) -> list[int]:
    return [int(part) for part in group.split(",")]


def cited_numbers(answer: str, passages: list[Passage]) -> list[int]:
    """Valid citation numbers in order of first appearance."""
    valid = {p.n for p in passages}
    seen: list[int] = []
    for match in MARKER.finditer(answer):
        for n in _numbers(match.group(1)):
            if n in valid and n not in seen:
                seen.append(n)
    return seen


def _fold(word: str) -> str:
    """Lowercase, without accents: congés -> conges, préhenseur -> prehenseur."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _stem(word: str) -> str:
    """A light, language-neutral stem: the plural dropped, then the first STEM_CHARS letters."""
    if len(word) > 3 and word[-1] in "sx" and word[-2] not in "su":
        word = word[:-1]
    return word[:STEM_CHARS]


def _content_words(text: str) -> set[str]:
    """The words of `text` that carry meaning (English and French function words left out),
    unaccented and stemmed, so that an answer's wording meets its source's."""
    words = (_fold(m.group(0)) for m in _WORD.finditer(text))
    return {_stem(w) for w in words if w not in _STOPWORDS and len(w) > 1}


# Sentences and lines, keeping the separators so the answer's layout survives.
_SEGMENTS = re.compile(r"((?<=[.!?])[ \t]+|\n+)")


#: A number weighs this many words: figures are most of what an answer states (27 days,
#: EUR 450, 9 kg), and a passage with other figures on the same subject does not support it.
NUMBER_WEIGHT = 2


def _weight(word: str) -> int:
    return NUMBER_WEIGHT if word[:1].isdigit() else 1


def _support(words: set[str], passage_words: set[str]) -> float:
    """The share of the sentence's content words (numbers weighing more) that the passage holds."""
    total = sum(_weight(w) for w in words)
    return sum(_weight(w) for w in words & passage_words) / total if total else 0.0


def verify_citations(answer: str, passages: list[Passage]) -> tuple[str, bool]:
    """Check every [n] against what its sentence says, and cite uncited sentences.

    A marker is kept when its passage shares enough of the sentence's words; a
    marker that points elsewhere is dropped (models, small ones especially, often
    cite the wrong block). A sentence left without a marker that one passage
    clearly supports gets that passage, flagged as inferred.
    Returns the re-marked answer and whether any citation was inferred.
    """
    if not passages:
        return MARKER.sub("", answer), False
    valid = {p.n for p in passages}
    passage_words = {p.n: _content_words(p.text + " " + p.title) for p in passages}
    parts = _SEGMENTS.split(answer)
    segments, separators = parts[0::2], parts[1::2] + [""]
    # A segment made only of markers ("4471. [2]") belongs to the sentence before it.
    for i in range(1, len(segments)):
        if segments[i].strip() and not MARKER.sub("", segments[i]).strip() and segments[i - 1].strip():
            segments[i - 1] = segments[i - 1].rstrip() + " " + segments[i].strip()
            segments[i] = ""
            separators[i - 1] = ""
    inferred_any = False
    out = []
    for segment, separator in zip(segments, separators):
        claimed = [n for m in MARKER.finditer(segment) for n in _numbers(m.group(1)) if n in valid]
        text = MARKER.sub("", segment).rstrip()
        text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
        words = _content_words(text)
        if len(words) < INFERRED_MIN_WORDS:
            keep = claimed  # too short to verify: trust the model
        else:
            keep = [n for n in claimed if _support(words, passage_words[n]) >= KEEP_MIN_OVERLAP]
            if not keep:
                best_n, best = max(((n, _support(words, pw)) for n, pw in passage_words.items()), key=lambda x: x[1])
                if best >= INFERRED_MIN_OVERLAP:
                    keep = [best_n]
                    inferred_any = inferred_any or best_n not in claimed
        keep = list(dict.fromkeys(keep))
        if keep and text:
            text += " " + "".join(f"[{n}]" for n in keep)
        trailing = segment[len(segment.rstrip()):] if segment.strip() else ""
        out.append(text + trailing + separator)
    return "".join(out), inferred_any


def _citing_words(answer: str, n: int) -> set[str]:
    """Content words of the sentences that cite [n]."""
    words: set[str] = set()
    for segment in _SEGMENTS.split(answer)[0::2]:
        if any(n in _numbers(m.group(1)) for m in MARKER.finditer(segment)):
            words |= _content_words(MARKER.sub("", segment))
    return words


def cited_span(p: Passage, answer: str) -> tuple[int, int, int]:
    """(chunk id, start, end) of the part of a block that the citing sentences draw on.

    A block can be a whole document; the citation points at its chunk that shares most
    words with the sentences citing it (ties: the retrieval hit)."""
    if not p.segments:
        return p.chunk_id, p.start_char, p.end_char
    words = _citing_words(answer, p.n)

    def support(segment) -> tuple[float, bool]:
        text = p.text[segment.start - p.start_char : segment.end - p.start_char]
        return (_support(words, _content_words(text)) if words else 0.0, segment.chunk_id == p.chunk_id)

    best = max(p.segments, key=support)
    return best.chunk_id, best.start, best.end


def citation_record(p: Passage, *, inferred: bool, answer: str = "") -> dict:
    from assistant.rag.retrieval import chunk_url

    if p.kind == "query":  # a query result: its SQL and rows, under the answer (assistant.rag.query_sources)
        return _query_citation(p, inferred=inferred)
    chunk_id, start, end = cited_span(p, answer)
    quote = p.text[start - p.start_char : end - p.start_char]
    return {
        "n": p.n,
        "document_id": p.document_id,
        "chunk_ids": [chunk_id],
        "title": p.title,
        "location": p.location,
        "url": p.url,
        "connector": p.connector,
        "start": start,
        "end": end,
        "quote": quote if len(quote) <= QUOTE_CHARS else quote[:QUOTE_CHARS].rstrip() + "…",
        "document_url": chunk_url(p.document_id, chunk_id, kind=p.kind),
        "inferred": inferred,
    }


def _query_citation(p: Passage, *, inferred: bool) -> dict:
    return {
        "n": p.n, "kind": "query", "document_id": p.document_id, "chunk_ids": [], "title": p.title, "location": "",
        "url": "", "connector": p.connector, "start": 0, "end": 0,
        "quote": p.text if len(p.text) <= QUOTE_CHARS else p.text[:QUOTE_CHARS].rstrip() + "…",
        "document_url": p.document_url, "inferred": inferred,
    }


def finalize_answer(answer: str, passages: list[Passage]) -> tuple[str, list[dict]]:
    """The answer's sanitised HTML and its citations (only to passages actually given,
    and only where the cited passage supports the sentence)."""
    answer, inferred = verify_citations(answer, passages)
    by_n = {p.n: p for p in passages}
    citations = [citation_record(by_n[n], inferred=inferred, answer=answer) for n in cited_numbers(answer, passages)]
    return render_html(answer, by_n), citations


def render_partial_html(answer: str) -> str:
    """An answer still being written, as sanitised HTML: markdown rendered, citation markers left
    as text (they are checked, and become chips, when the answer is complete)."""
    return _sanitise(_markdown.render(answer))


def _sanitise(rendered: str) -> str:
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def render_html(answer: str, by_n: dict[int, Passage]) -> str:
    rendered = _markdown.render(answer)

    def chip(match: re.Match) -> str:
        chips = []
        for n in _numbers(match.group(1)):
            p = by_n.get(n)
            if p is not None:
                chips.append(
                    f'<a class="cite" data-n="{n}" href="{html.escape(p.document_url)}" '
                    f'title="{html.escape(p.title)}">[{n}]</a>'
                )
        return "".join(chips)  # markers that point nowhere are dropped

    return _sanitise(MARKER.sub(chip, rendered))
