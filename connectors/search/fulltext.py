"""Full-text search: the chunks that best match a question's words, ranked by BM25 (see bm25.py)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import BooleanField, F
from django.db.models.expressions import RawSQL

from connectors.index_version import live_index
from connectors.models import Chunk
from connectors.search import bm25 as fts
from connectors.search.filters import NO_FILTERS, SearchFilters, few_enough_to_scan, visible_chunks
from connectors.search.local_settings import rows_with_settings
from connectors.text_language import question_configurations


def fulltext_query(text: str) -> RawSQL:
    """websearch_to_tsquery in the question's own language and each configured one, OR-ed.

    A plain question is matched on any of its words; a query with operators ("exact phrase",
    -excluded) keeps websearch semantics. (The ranking, `chunk_ids_fulltext`, narrows which
    words find candidates; this is the plain matching condition.)
    """
    parts, params = [], []
    keep_and = fts.has_operators(text)
    for language in question_configurations(text):
        if keep_and:
            parts.append("websearch_to_tsquery(%s::regconfig, %s)")
        else:
            parts.append("replace(websearch_to_tsquery(%s::regconfig, %s)::text, ' & ', ' | ')::tsquery")
        params += [language, text]
    return RawSQL("(" + " || ".join(parts) + ")", params)


def _fulltext_scored(
    tsquery: str, plan, stats, groups, filters, k, budget, version, through_filter: bool = False,
    prefer: tuple[str, ...] = (),
) -> list[tuple[int, float]]:
    """(id, BM25 score) of the best k of at most `budget` visible chunks that match `tsquery`.

    through_filter: match each chunk the filter leaves in its row instead of through the GIN index
    (`ts_match_vq` is the function behind `@@`; spelled so, no index serves it), for a filter to a
    few chunks and a query of common words, whose posting lists span the whole table.
    prefer: narrower tsqueries whose matches fill the budget first, in this order (with
    through_filter: one read of the filter's chunks instead of one per stage)."""
    column = f"{Chunk._meta.db_table}.search_vector"
    match = f"ts_match_vq({column}, %s::tsquery)" if through_filter else f"{column} @@ %s::tsquery"
    tiers = {f"tier{i}": RawSQL(f"ts_match_vq({column}, %s::tsquery)", [query], output_field=BooleanField())
             for i, query in enumerate(prefer)}
    candidates = (
        visible_chunks(groups, filters, version)
        .alias(matches=RawSQL(match, [tsquery], output_field=BooleanField()), **tiers)
        .filter(matches=True)
        .order_by(*[F(tier).desc() for tier in tiers])
        .values_list("id", "search_vector")[:budget]
    )
    # A parallel scan (or JIT compilation) costs more to start than it saves on a few hundred
    # rows; a parallel or synchronized scan would also make the candidates cut at the budget
    # differ from run to run.
    return rows_with_settings(
        ["SET LOCAL max_parallel_workers_per_gather = 0", "SET LOCAL synchronize_seqscans = off", "SET LOCAL jit = off"],
        *fts.bm25_query(*candidates.query.sql_with_params(), plan, stats, k),
    )


def chunk_ids_fulltext(
    *, text: str, groups: list[str], k: int, filters: SearchFilters = NO_FILTERS, version: int | None = None
) -> list[int]:
    """Ids of the k chunks that best match `text`, ranked by BM25 (see connectors.search.bm25)."""
    return [chunk_id for chunk_id, _ in chunks_fulltext_scored(text=text, groups=groups, k=k, filters=filters,
                                                                version=version)]


def chunks_fulltext_scored(
    *, text: str, groups: list[str], k: int, filters: SearchFilters = NO_FILTERS, version: int | None = None,
    exact_scan: bool | None = None,
) -> list[tuple[int, float]]:
    """(id, BM25 score) of the k chunks that best match `text`, best first.

    Candidates come from the GIN index with the reader's ACL and filters in the same query,
    at most RAG_FULLTEXT_MAX_CANDIDATES per stage: first those with the question's rarest
    words, then, only if they could still make the top k, those with enough of its common ones;
    under a filter to few chunks (RAG_EXACT_SCAN_MAX_CHUNKS) the later stages read the filter's
    chunks once (not the common words' posting lists over the whole table, nor once per stage).
    `version`: the index version to search (default: the live one); `exact_scan`: whether the
    filter leaves few chunks, when the caller counted already (else counted here, if needed).
    """
    parsed, reltuples = fts.parse_query(text)
    if not parsed.lexemes:
        return []
    stats = fts.statistics_for(parsed.lexemes, reltuples)
    budget = max(k, settings.RAG_FULLTEXT_MAX_CANDIDATES)
    plan = fts.plan_for(parsed, stats, budget)
    if plan is None:
        return []
    if version is None:
        version = live_index().number
    scores: dict[int, float] = {}
    if plan.first:
        scores.update(_fulltext_scored(plan.first, plan, stats, groups, filters, k, budget, version))
    if not plan.strict:
        threshold = sorted(scores.values(), reverse=True)[k - 1] if len(scores) >= k else None
        stages = fts.later_stages(plan, threshold)
        through_filter = bool(stages) and (few_enough_to_scan(filters) if exact_scan is None else exact_scan)
        if through_filter and len(stages) > 1:
            # Reading the filter's chunks is what a stage costs here (about 15 ms for 10,000
            # chunks, scoring the matches a tenth of it): one read takes the broadest stage's
            # matches, the narrower stages' first, so the budget holds what the stages would.
            scores.update(_fulltext_scored(stages[-1], plan, stats, groups, filters, k, budget, version,
                                           through_filter, prefer=tuple(stages[:-1])))
            stages = []
        for tsquery in stages:
            scores.update(_fulltext_scored(tsquery, plan, stats, groups, filters, k, budget, version, through_filter))
            if len(scores) >= k:
                break
    best = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:k]
    return [(chunk_id, float(scores[chunk_id])) for chunk_id in best]
