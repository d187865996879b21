"""BM25 ranking inside PostgreSQL full-text search.

PostgreSQL's own ts_rank / ts_rank_cd count matches but know nothing of how rare a word is, so
"patients" weighs as much as "tamoxifen" (SciFact nDCG@10: 0.38 with ts_rank_cd, 0.68 with
this). Here a query is ranked with Okapi BM25 (the Lucene formula), computed in SQL over the
chunks the GIN index finds, with the reader's ACL and filters in the same query:

    score(chunk) = sum over query lexemes t of  idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))
    idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))

(Lucene's constant factor k1 + 1 is left out: it changes no order.)

- tf: positions of the lexeme in the chunk's `search_vector` (the document's title, weight A,
  the headings above the chunk, C, then the chunk's text; see `chunk_search_vector`), read for
  the query lexemes only:
  `ts_filter(setweight(vector, 'B', lexemes), '{b}')` keeps just those, so little is unnested;
- dl: the chunk's lexeme count, `length(search_vector)`; avgdl: its mean over the index;
- N, avgdl and df: on a small index (fewer than EXACT_STATISTICS_BELOW chunks, by the planner's
  estimate) counted on every query. On a larger one N and avgdl are counted every
  STATISTICS_TTL seconds, df of common lexemes comes from the planner's statistics
  (`pg_stats.most_common_elems` of `search_vector`, kept by (auto)ANALYZE) and df of the
  others from a count through the GIN index (cheap: they are rare), cached unless 0, so a
  new document's new word is found at once. The statistics are over the whole index, not
  the reader's visible part: a chunk's score does not depend on who asks.

Which chunks are scored (at most RAG_FULLTEXT_MAX_CANDIDATES per stage), for a question in plain
words, where any word may match:
1. the chunks containing the question's rarest lexemes, as many of them as fit the budget
   by document frequency; every query lexeme counts in their scores;
2. a chunk with none of those lexemes scores less than the sum of the other ("common")
   lexemes' idf, since each BM25 term stays below its idf. If the k-th score of stage 1 is
   above that sum, the top k is exact and done; otherwise stage 2 scores the chunks with
   enough common lexemes to pass it (at least m of them), and when stage 1 found fewer than
   k, those with two common lexemes, then one.
A query with operators (a "quoted phrase", a -word) keeps websearch_to_tsquery's meaning:
candidates satisfy it, and its positive lexemes are scored.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass
from itertools import combinations
from math import comb

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import connection
from django.db.models import F, Value

from connectors.text_language import question_configuration, question_configurations

CHUNK_TABLE = "connectors_chunk"
# Below this many chunks (the planner's estimate), N, avgdl and df are counted on every query.
EXACT_STATISTICS_BELOW = 10_000
STATISTICS_TTL = 300.0
_DF_CACHE_SIZE = 100_000

# A tsquery's text: quoted lexemes (with optional :* and weight suffixes) and operators.
_TSQUERY_TOKEN = re.compile(r"'((?:[^']|'')*)'(?::[*A-Da-d]+)?|!|\(|\)|&|\||<\d*->|<->")


def chunk_search_vector(*, title: str, language: str, headings: bool = False, section=None, text=None):
    """A chunk's search_vector: its document's title (weight A), with `headings` the headings
    above the chunk (its `section`, weight C), then the chunk's text (D).

    Every chunk carries the title, so a question naming the subject finds each part of the
    document; and its section, so a word only in a heading finds the chunks under it. The
    indexer passes an empty title when CHUNK_CONTEXT leaves it out. The migration
    connectors.0003 computes the title-and-text form in SQL for existing chunks.

    Without `section` and `text` the expression reads the row's columns (for an UPDATE); with
    them, it holds their values and can be written in the INSERT itself (the indexer: an UPDATE
    afterwards wrote every new row twice, its vector into the HNSW index twice too).
    """
    vector = SearchVector(Value(title or ""), config=language, weight="A")
    if headings:
        vector = vector + SearchVector(F("section") if section is None else Value(section), config=language, weight="C")
    return vector + SearchVector(F("text") if text is None else Value(text), config=language)


@dataclass(frozen=True)
class ParsedQuery:
    lexemes: tuple[str, ...]  # positive lexemes, in order of first appearance: these are scored
    strict: tuple[str, ...]  # websearch_to_tsquery texts to satisfy (one per language), or () for plain words


def has_operators(text: str) -> bool:
    """A "quoted phrase" or a -excluded word: websearch semantics apply, not "any of the words"."""
    return '"' in text or re.search(r"(^|\s)-\w", text) is not None


def positive_lexemes(tsquery_text: str) -> list[str]:
    """The lexemes of a tsquery that are not negated, e.g. 'a' & !( 'b' <-> 'c' ) -> ['a']."""
    lexemes: list[str] = []
    negated_scopes = [False]  # one entry per open parenthesis: is the group negated?
    pending_not = False
    for match in _TSQUERY_TOKEN.finditer(tsquery_text):
        token = match.group(0)
        if token == "!":
            pending_not = not pending_not
        elif token == "(":
            negated_scopes.append(negated_scopes[-1] ^ pending_not)
            pending_not = False
        elif token == ")":
            if len(negated_scopes) > 1:
                negated_scopes.pop()
        elif token.startswith("'"):
            if not (negated_scopes[-1] ^ pending_not):
                lexeme = match.group(1).replace("''", "'")
                if lexeme not in lexemes:
                    lexemes.append(lexeme)
            pending_not = False
        else:
            pending_not = False
    return lexemes


def tsquery_literal(lexeme: str) -> str:
    """A lexeme quoted for tsquery input (quotes doubled, backslashes escaped)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery_of(lexemes, operator: str = "|") -> str:
    return f" {operator} ".join(tsquery_literal(lexeme) for lexeme in lexemes)


# The words of a text that a configuration drops as stop words ("les", "des", "pour" in French).
_STOP_WORDS = "SELECT array(SELECT DISTINCT lower(token) FROM ts_debug(%s::regconfig, %s) WHERE lexemes = '{}')"


def without_words(text: str, words) -> str:
    """`text` with these whole words (any case) cut out; spaces, punctuation and operators stay."""
    if not words:
        return text
    pattern = r"(?<!\w)(?:" + "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True)) + r")(?!\w)"
    return re.sub(pattern, " ", text, flags=re.IGNORECASE)


def parse_query(text: str) -> tuple[ParsedQuery, float]:
    """The query's lexemes in its own language's configuration and every RAG_FULLTEXT_LANGUAGES
    one (a French question's "paquets" is stemmed as French documents were), and the index's
    size estimate.

    The other configurations parse the question without its own language's stop words: English
    would keep the French "les" or "pour" as words, and they would match every chunk that
    mixes French into English text (a partly translated page) as if they meant something.
    """
    languages = question_configurations(text)
    own = question_configuration(text)
    with connection.cursor() as cursor:
        rest = text
        if own is not None and len(languages) > 1:
            cursor.execute(_STOP_WORDS, [own, text])
            rest = without_words(text, cursor.fetchone()[0])
        cursor.execute(
            "SELECT array(SELECT websearch_to_tsquery(l::regconfig, t)::text "
            "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS q(l, t, i) ORDER BY i), "
            f"(SELECT reltuples FROM pg_class WHERE oid = '{CHUNK_TABLE}'::regclass)",
            [languages, [text if language == own else rest for language in languages]],
        )
        queries, reltuples = cursor.fetchone()
    lexemes: list[str] = []
    for query in queries:
        for lexeme in positive_lexemes(query):
            if lexeme not in lexemes:
                lexemes.append(lexeme)
    strict = tuple(q for q in queries if q.strip()) if has_operators(text) else ()
    return ParsedQuery(tuple(lexemes), strict), float(reltuples or -1)


# --- statistics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistics:
    rows: float  # N
    avg_length: float  # avgdl, in lexemes
    df: dict  # lexeme -> chunks containing it


class _Cache:
    """Per-process statistics of a larger index, refreshed after STATISTICS_TTL seconds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.clear()

    def clear(self):
        self.loaded_at = -math.inf
        self.rows = 0.0
        self.avg_length = 1.0
        self.common: dict[str, float] = {}  # lexeme -> fraction of chunks (pg_stats)
        self.counted: dict[str, tuple[float, int]] = {}  # lexeme -> (when, df), only df >= CACHE_COUNTS_FROM


_cache = _Cache()
# Counts from this up are cached; a lexeme counted 0 is counted again on the next query, so a
# new document's new word is found at once.
CACHE_COUNTS_FROM = 1


def statistics_clear() -> None:
    """Forget the cached statistics (after a bulk load, or between tests)."""
    with _cache.lock:
        _cache.clear()


_COUNT_SQL = (
    f"SELECT array(SELECT (SELECT count(*) FROM {CHUNK_TABLE} WHERE search_vector @@ q) "
    "FROM unnest(%s::tsquery[]) WITH ORDINALITY AS t(q, i) ORDER BY i)"
)


def _gin_counts(lexemes: list[str]) -> dict[str, int]:
    if not lexemes:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL, [[tsquery_literal(lexeme) for lexeme in lexemes]])
        counts = cursor.fetchone()[0]
    return dict(zip(lexemes, counts, strict=True))


def _size() -> tuple[float, float]:
    """N and avgdl, counted (avgdl from a sample of a large index)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {CHUNK_TABLE} WHERE search_vector IS NOT NULL")
        rows = float(cursor.fetchone()[0])
        cursor.execute(
            f"SELECT avg(length(search_vector)) FROM (SELECT search_vector FROM {CHUNK_TABLE} "
            "TABLESAMPLE SYSTEM (%s) REPEATABLE (0) WHERE search_vector IS NOT NULL) AS s",
            [min(100.0, 100.0 * 20_000 / max(rows, 1.0))],
        )
        avg_length = cursor.fetchone()[0]
        if avg_length is None:  # an empty sample of a tiny table
            cursor.execute(f"SELECT avg(length(search_vector)) FROM {CHUNK_TABLE}")
            avg_length = cursor.fetchone()[0]
    return rows, float(avg_length or 1.0)


def _exact_statistics(lexemes: list[str]) -> Statistics:
    """N, avgdl and each lexeme's df of a small index, counted in one query (one round trip)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), avg(length(search_vector)), ({_COUNT_SQL}) FROM {CHUNK_TABLE} "
            "WHERE search_vector IS NOT NULL",
            [[tsquery_literal(lexeme) for lexeme in lexemes]],
        )
        rows, avg_length, counts = cursor.fetchone()
    return Statistics(float(rows), float(avg_length or 1.0), dict(zip(lexemes, counts or [], strict=True)))


def _common_elements() -> dict[str, float]:
    """Lexeme -> fraction of chunks, for the most common lexemes, from the planner's statistics."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
            "WHERE schemaname = current_schema() AND tablename = %s AND attname = 'search_vector'",
            [CHUNK_TABLE],
        )
        row = cursor.fetchone()
    if not row or not row[0] or not row[1]:
        return {}
    elements, frequencies = row
    # Frequencies are per non-null row; the three extra values at the end (min, max, nulls) are not needed.
    return dict(zip(elements, frequencies[: len(elements)], strict=True))


def statistics_for(lexemes: tuple[str, ...], reltuples: float) -> Statistics:
    """N, avgdl and df of each lexeme. Small indexes (by the planner's row estimate) are counted
    on every query; larger ones use the planner's common-element statistics and cached counts."""
    if reltuples < EXACT_STATISTICS_BELOW:
        return _exact_statistics(list(lexemes))
    now = time.monotonic()
    with _cache.lock:
        if now - _cache.loaded_at > STATISTICS_TTL:
            _cache.rows, _cache.avg_length = _size()
            _cache.common = _common_elements()
            _cache.counted = {}
            _cache.loaded_at = now
        rows, avg_length, common, counted = _cache.rows, _cache.avg_length, _cache.common, _cache.counted
    df: dict[str, float] = {}
    missing = []
    for lexeme in lexemes:
        if lexeme in common:
            df[lexeme] = common[lexeme] * rows
        elif (hit := counted.get(lexeme)) and now - hit[0] <= STATISTICS_TTL:
            df[lexeme] = hit[1]
        else:
            missing.append(lexeme)
    # Lexemes outside the common elements are rarer than those, so their GIN counts are cheap.
    for lexeme, count in _gin_counts(missing).items():
        df[lexeme] = count
        if count >= CACHE_COUNTS_FROM:
            if len(counted) >= _DF_CACHE_SIZE:
                counted.clear()
            counted[lexeme] = (now, count)
    return Statistics(rows, avg_length, df)


def idf(df: float, rows: float) -> float:
    return math.log(1.0 + (rows - df + 0.5) / (df + 0.5))


# --- ranking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The query's scored lexemes and how candidates are found.

    `first` matches the rarest lexemes (`rare`), whose document frequencies add up to at most
    the budget; `common` are the others. A chunk that contains none of the rare lexemes
    scores less than the sum of the common lexemes' idf (each BM25 term is below its idf), so
    after scoring the first candidates, `later_stages` says which other chunks could still
    reach the top k.
    """

    terms: tuple[str, ...]
    idfs: tuple[float, ...]
    first: str | None  # tsquery text; None when even the rarest lexeme is over the budget
    common: tuple[str, ...]  # lexemes left out of `first`, the rarest first
    strict: bool = False

    def idf_of(self, lexeme: str) -> float:
        return self.idfs[self.terms.index(lexeme)]


# At most this many AND-ed combinations in one tsquery of a later stage.
_MAX_COMBINATIONS = 200


def plan_for(parsed: ParsedQuery, stats: Statistics, budget: int) -> Plan | None:
    present = [lexeme for lexeme in parsed.lexemes if stats.df.get(lexeme, 0) > 0]
    if not present:
        return None
    rows = max(stats.rows, max(stats.df[lexeme] for lexeme in present))
    idfs = tuple(idf(stats.df[lexeme], rows) for lexeme in present)
    if parsed.strict:
        return Plan(tuple(present), idfs, " | ".join(f"( {q} )" for q in parsed.strict), (), strict=True)
    by_rarity = sorted(present, key=lambda lexeme: stats.df[lexeme])
    rare, total = [], 0.0
    for lexeme in by_rarity:
        if total + stats.df[lexeme] > budget:
            break
        rare.append(lexeme)
        total += stats.df[lexeme]
    common = tuple(by_rarity[len(rare):])
    return Plan(tuple(present), idfs, tsquery_of(rare, "|") if rare else None, common)


def at_least(lexemes, m: int) -> str:
    """A tsquery matching chunks that contain at least m of the lexemes (m <= len(lexemes))."""
    if m <= 1:
        return tsquery_of(lexemes, "|")
    return " | ".join(f"( {tsquery_of(group, '&')} )" for group in combinations(lexemes, m))


def later_stages(plan: Plan, threshold: float | None) -> list[str]:
    """tsqueries of the chunks outside `first` that may still score above `threshold`, broadest last.

    threshold None: the first stage found fewer than k chunks (or did not run), so any chunk
    with a common lexeme may count: those with more of them first.
    """
    common = list(plan.common)
    if not common:
        return []
    if threshold is None:
        stages = [at_least(common, 2)] if len(common) >= 2 and comb(len(common), 2) <= _MAX_COMBINATIONS else []
        return [*stages, at_least(common, 1)]
    if sum(plan.idf_of(lexeme) for lexeme in common) <= threshold:
        return []  # the top k is exact: no chunk without a rare lexeme can reach it
    # A chunk needs at least m common lexemes: the m highest idfs are the first to pass the threshold.
    ranked = sorted((plan.idf_of(lexeme) for lexeme in common), reverse=True)
    m, reached = 0, 0.0
    while reached <= threshold:
        reached += ranked[m]
        m += 1
    while m > 1 and comb(len(common), m) > _MAX_COMBINATIONS:
        m -= 1  # fewer required lexemes: a broader query, still containing every chunk that can pass
    return [at_least(common, m)]


def bm25_query(candidates_sql: str, candidates_params, plan: Plan, stats: Statistics, k: int) -> tuple[str, list]:
    """SQL and parameters that score the rows of `candidates_sql` (id, search_vector) by BM25, best k first."""
    k1, b = settings.RAG_BM25_K1, settings.RAG_BM25_B
    sql = (
        # ts_filter(setweight(...)) keeps only the query's lexemes, so array_position always finds one
        "SELECT c.id, (SELECT sum((%s::float8[])[array_position(%s::text[], u.lexeme)] * tf.n / (tf.n + norm.k)) "
        "  FROM unnest(ts_filter(setweight(c.search_vector, 'B', %s::text[]), '{b}')) AS u "
        "  CROSS JOIN LATERAL (SELECT coalesce(array_length(u.positions, 1), 1)::float8 AS n) AS tf"
        ") AS score "
        f"FROM ({candidates_sql}) AS c "
        "CROSS JOIN LATERAL (SELECT %s::float8 * (1 - %s::float8 + %s::float8 * length(c.search_vector) / %s::float8) "
        "AS k) AS norm "
        "ORDER BY score DESC, c.id LIMIT %s"
    )
    terms = list(plan.terms)
    params = [list(plan.idfs), terms, terms, *candidates_params, k1, b, b, max(stats.avg_length, 1.0), k]
    return sql, params
