"""Measure retrieval and answer quality on public data sets, through the real pipeline.

    manage.py evaluate retrieval --beir DIR [--split test] [--modes dense,fulltext,hybrid] ...
    manage.py evaluate answers --corpus DOCS.jsonl --qa QA.jsonl [--limit 50] [--llm-url URL] ...

Both ingest the corpus with a "jsonl" connector named "evaluation: <name>" (a connector of
that name over the same file is reused; unchanged documents are skipped by content hash),
synced in this process with the index tasks run inline. `retrieval` ranks documents for
every judged query in each search mode and prints nDCG@10, Recall@10, Recall@100 and MRR@10;
`answers` asks each question through the chat pipeline (question_submit + answer_events,
the code the chat view runs) and scores source hits, exact match / F1 and citation validity.

Results print as a table and as JSON; `--save-baseline FILE` stores them, and
`--baseline FILE --tolerance T` exits with status 1 when a metric falls more than T below
the baseline, so CI can gate on quality. The connector (and the evaluation's conversations)
are removed afterwards unless `--keep` is given; use a database of its own for evaluations,
as the connector is public while it exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connections
from django.test.utils import override_settings

from assistant.rag import evaluation as ev

ALL_MODES = ("dense", "fulltext", "hybrid")
RETRIEVAL_COLUMNS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
ANSWER_COLUMNS = (
    "source_hit", "source_hit_title", "retrieval_hit", "exact_match", "f1", "contains_answer", "citation_validity"
)
DOCUMENTS_PER_QUERY = 100  # enough for Recall@100
SYNC_WAIT_SECONDS = 600


class Command(BaseCommand):
    help = "Evaluate retrieval (BEIR corpus + qrels) or answers (corpus + QA pairs) through the real pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)

        def common(p):
            p.add_argument("--name", help="Connector name (default: 'evaluation: <data set name>').")
            p.add_argument("--json-out", type=Path, help="Write the full JSON report to this file.")
            p.add_argument("--save-baseline", type=Path, help="Also write the report here, as the new baseline.")
            p.add_argument("--baseline", type=Path, help="Compare with this baseline; exit 1 on a regression.")
            p.add_argument("--tolerance", type=float, default=0.02,
                           help="Allowed absolute drop below the baseline per metric (default 0.02).")
            p.add_argument("--keep", action="store_true",
                           help="Keep the evaluation connector (and conversations) for a faster re-run.")
            p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SETTING=VALUE",
                           help="Override a setting for this run, e.g. --set RAG_RRF_K=20 (repeatable).")
            p.add_argument("--progress-seconds", type=float, default=5.0,
                           help="Print ingestion progress to stderr this often (0: never).")

        retrieval = sub.add_parser("retrieval", help="nDCG@10, Recall@10/100, MRR@10 per search mode on a BEIR dir.")
        retrieval.add_argument("--beir", type=Path, required=True,
                               help="BEIR directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")
        retrieval.add_argument("--split", default="test")
        retrieval.add_argument("--modes", default=",".join(ALL_MODES), help="Comma-separated: dense,fulltext,hybrid.")
        retrieval.add_argument("--limit", type=int, help="Only the first N judged queries.")
        retrieval.add_argument("--candidates", type=int, default=settings.RAG_CANDIDATES,
                               help="Candidates per side (vector, full text) before fusion "
                                    "(default: the product's RAG_CANDIDATES, 50).")
        retrieval.add_argument("--chunks", type=int, default=None,
                               help="Chunks ranked per query before collapsing to documents (default: "
                                    "--candidates, so the fused list is the product's; more widens each side).")
        common(retrieval)

        answers = sub.add_parser("answers", help="Source hit, EM/F1 and citation validity through the chat pipeline.")
        answers.add_argument("--corpus", type=Path, required=True, help="JSON Lines documents (_id, title, text).")
        answers.add_argument("--qa", type=Path, required=True, help="JSON Lines questions (question, answer, doc_id).")
        answers.add_argument("--limit", type=int, default=50, help="How many questions (a seeded random sample).")
        answers.add_argument("--seed", type=int, default=0)
        answers.add_argument("--llm-url", help="OpenAI-compatible base URL (default: LLM_BASE_URL).")
        answers.add_argument("--llm-model", help="Model name (default: LLM_MODEL).")
        answers.add_argument("--llm-api-key", help="API key (default: LLM_API_KEY).")
        answers.add_argument("--max-tokens", type=int, help="Answer length limit (default: LLM_MAX_TOKENS).")
        common(answers)

    # ------------------------------------------------------------------------------------------
    def handle(self, *args, **options):
        overrides = _parse_overrides(options["overrides"])
        started = time.monotonic()
        with override_settings(**overrides), _eager_tasks():
            if options["subcommand"] == "retrieval":
                report = self._retrieval(options)
            else:
                report = self._answers(options)
        report["settings"]["overrides"] = {k: _jsonable(v) for k, v in overrides.items()}
        report["timing"]["total_s"] = round(time.monotonic() - started, 1)
        self._finish(report, options)

    # --- retrieval -----------------------------------------------------------------------------
    def _retrieval(self, options) -> dict:
        from connectors.indexing import get_embedder
        from connectors.search import SearchFilters, chunks_search

        root: Path = options["beir"].expanduser().resolve()
        corpus, queries_file = root / "corpus.jsonl", root / "queries.jsonl"
        qrels_file = root / "qrels" / f"{options['split']}.tsv"
        for path in (corpus, queries_file, qrels_file):
            if not path.is_file():
                raise CommandError(f"{path} is missing: --beir needs corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
        modes = [m.strip() for m in options["modes"].split(",") if m.strip()]
        unknown = set(modes) - set(ALL_MODES)
        if unknown or not modes:
            raise CommandError(f"--modes takes some of {', '.join(ALL_MODES)}; got {options['modes']!r}")

        queries = _read_queries(queries_file)
        qrels = _read_qrels(qrels_file)
        judged = [qid for qid in qrels if qid in queries and any(rel > 0 for rel in qrels[qid].values())]
        missing = [qid for qid in qrels if qid not in queries]
        if missing:
            self.stderr.write(f"warning: {len(missing)} judged queries have no text in queries.jsonl; skipped")
        if options["limit"]:
            judged = judged[: options["limit"]]
        if not judged:
            raise CommandError(f"No judged queries in {qrels_file}")
        qrels = {qid: qrels[qid] for qid in judged}

        connector, ingest = self._ingest(corpus, options["name"] or f"evaluation: {root.name}", options)
        try:
            embed_started = time.monotonic()
            texts = [queries[qid] for qid in judged]
            embeddings = get_embedder().embed(texts)
            embed_s = time.monotonic() - embed_started
            only_this = SearchFilters(connector_ids=(connector.id,))
            metrics, search_timing, short_lists = {}, {}, {}
            for mode in modes:
                mode_started = time.monotonic()
                run: dict[str, list[str]] = {}
                for qid, text, embedding in zip(judged, texts, embeddings):
                    hits = chunks_search(
                        embedding=embedding, text=text, groups=[], k=options["chunks"] or options["candidates"],
                        mode=mode,
                        candidates=options["candidates"], filters=only_this,
                    )
                    # A document ranks where its best chunk ranks.
                    run[qid] = ev.unique(hit.chunk.document.external_id for hit in hits)[:DOCUMENTS_PER_QUERY]
                elapsed = time.monotonic() - mode_started
                metrics[mode] = {k: round(v, 4) for k, v in ev.evaluate_run(run, qrels).items()}
                search_timing[mode] = {"total_s": round(elapsed, 1), "ms_per_query": round(1000 * elapsed / len(judged), 1)}
                short_lists[mode] = sum(1 for ids in run.values() if len(ids) < DOCUMENTS_PER_QUERY)
                self.stderr.write(f"{mode}: nDCG@10 {metrics[mode]['ndcg@10']:.4f} ({elapsed:.1f}s)")
        finally:
            self._cleanup(connector, options)

        return {
            "kind": "retrieval",
            "dataset": root.name,
            "split": options["split"],
            "queries": len(judged),
            "relevant_pairs": sum(sum(1 for r in rel.values() if r > 0) for rel in qrels.values()),
            "corpus": ingest,
            "metrics": metrics,
            "queries_with_fewer_than_100_documents": short_lists,
            "settings": {
                **_index_settings(),
                "candidates": options["candidates"],
                "chunks_per_query": options["chunks"] or options["candidates"],
                "documents_per_query": DOCUMENTS_PER_QUERY,
            },
            "timing": {"ingest_s": ingest["seconds"], "embed_queries_s": round(embed_s, 1), "search": search_timing},
        }

    # --- answers -------------------------------------------------------------------------------
    def _answers(self, options) -> dict:
        from asgiref.sync import async_to_sync

        from assistant.chat import answering
        from assistant.chat.models import Conversation, Message
        from assistant.chat.services import conversation_create, question_submit
        from connectors.models import Connector

        corpus: Path = options["corpus"].expanduser().resolve()
        qa_file: Path = options["qa"].expanduser().resolve()
        for path in (corpus, qa_file):
            if not path.is_file():
                raise CommandError(f"{path} does not exist")
        pairs = _read_qa(qa_file)
        if not pairs:
            raise CommandError(f"No usable lines (question, answer, doc_id) in {qa_file}")
        rng = random.Random(options["seed"])
        picked = [pairs[i] for i in rng.sample(range(len(pairs)), min(options["limit"], len(pairs)))]

        llm = {
            "LLM_BASE_URL": (options["llm_url"] or settings.LLM_BASE_URL).rstrip("/"),
            "LLM_MODEL": options["llm_model"] or settings.LLM_MODEL,
            "LLM_API_KEY": options["llm_api_key"] or settings.LLM_API_KEY,
            "LLM_MAX_TOKENS": options["max_tokens"] or settings.LLM_MAX_TOKENS,
        }
        connector, ingest = self._ingest(corpus, options["name"] or f"evaluation: {corpus.stem}", options)
        others = Connector.objects.exclude(id=connector.id).filter(documents__isnull=False).distinct().count()
        if others:
            self.stderr.write(
                f"warning: {others} other connector(s) hold documents in this database; the chat pipeline "
                "retrieves from everything the evaluator may see, so use a database of its own."
            )
        user = _evaluator()
        conversations: list = []
        items: list[dict] = []
        given: list = []  # the passages the pipeline put into the prompt, per question

        def capturing_build_messages(*args, **kwargs):
            given.append(list(kwargs.get("passages") or []))
            return real_build_messages(*args, **kwargs)

        real_build_messages = answering.build_messages
        try:
            with override_settings(**llm):
                answering.get_chat_client.cache_clear()
                answering.build_messages = capturing_build_messages
                for number, pair in enumerate(picked, start=1):
                    given.clear()
                    conversation = conversation_create(user=user)
                    conversations.append(conversation.id)
                    _, message = question_submit(conversation=conversation, content=pair["question"])
                    asked = time.monotonic()
                    events = async_to_sync(_collect)(answering.answer_events(message, user))
                    latency = time.monotonic() - asked
                    message = Message.objects.get(id=message.id)
                    passages = given[-1] if given else []
                    items.append(self._score(pair, message, events, passages, latency))
                    item = items[-1]
                    self.stderr.write(
                        f"[{number}/{len(picked)}] hit={int(item['source_hit'])} f1={item['f1']:.2f} "
                        f"{latency:.1f}s {pair['question'][:70]!r}"
                    )
        finally:
            answering.build_messages = real_build_messages
            answering.get_chat_client.cache_clear()
            if not options["keep"]:
                Conversation.objects.filter(id__in=conversations).delete()
            self._cleanup(connector, options)

        answered = [i for i in items if not i["error"]]
        with_citations = [i for i in items if i["citations"]]
        metrics = {
            "source_hit": ev.mean(i["source_hit"] for i in items),
            "source_hit_title": ev.mean(i["source_hit_title"] for i in items),
            "retrieval_hit": ev.mean(i["retrieval_hit"] for i in items),
            "exact_match": ev.mean(i["exact_match"] for i in items),
            "f1": ev.mean(i["f1"] for i in items),
            "contains_answer": ev.mean(i["contains_answer"] for i in items),
            # Over answers that cite anything; an answer without citations cannot cite wrongly.
            "citation_validity": ev.mean(float(i["citations_valid"]) for i in with_citations) if with_citations else 1.0,
        }
        latencies = [i["latency_s"] for i in answered]
        first_tokens = [i["first_token_ms"] for i in answered if i["first_token_ms"] is not None]
        return {
            "kind": "answers",
            "dataset": corpus.stem,
            "qa": qa_file.name,
            "questions": len(items),
            "seed": options["seed"],
            "corpus": ingest,
            "metrics": {k: round(v, 4) for k, v in metrics.items()},
            "counts": {
                "questions": len(items),
                "answered": len(answered),
                "errors": len(items) - len(answered),
                "with_citations": len(with_citations),
                "gold_document_missing": sum(1 for i in items if not i["gold_in_corpus"]),
            },
            "latency": {
                "median_s": _round(ev.median(latencies)),
                "p90_s": _round(ev.percentile(latencies, 90)),
                "median_first_token_ms": _round(ev.median(first_tokens), 0),
            },
            "settings": {
                **_index_settings(),
                "llm_base_url": llm["LLM_BASE_URL"],
                "llm_model": llm["LLM_MODEL"],
                "llm_max_tokens": llm["LLM_MAX_TOKENS"],
                "llm_temperature": settings.LLM_TEMPERATURE,
                "passages_per_question": settings.RAG_TOP_K,
                "context_tokens": getattr(settings, "RAG_CONTEXT_TOKENS", None),
                "search_mode": settings.RAG_SEARCH_MODE,
            },
            "timing": {"ingest_s": ingest["seconds"]},
            "items": items,
        }

    def _score(self, pair: dict, message, events: list, passages: list, latency: float) -> dict:
        from connectors.models import Document

        error = next((data.get("message") for name, data in events if name == "error"), None)
        citations = message.citations or []
        document_ids = {str(p.document_id) for p in passages} | {str(c.get("document_id")) for c in citations}
        external = dict(
            (str(doc_id), ext) for doc_id, ext in Document.objects.filter(id__in=document_ids).values_list("id", "external_id")
        )
        cited_docs = list(dict.fromkeys(external.get(str(c.get("document_id")), "?") for c in citations))
        retrieved_docs = list(dict.fromkeys(external.get(str(p.document_id), "?") for p in passages))
        scores = ev.answer_scores(message.content or "", pair["answers"])
        gold_title = self._corpus_titles.get(pair["doc_id"])
        cited_titles = {self._corpus_titles.get(doc) for doc in cited_docs}
        return {
            "id": pair.get("id"),
            "question": pair["question"],
            "gold_answers": pair["answers"],
            "gold_doc_id": pair["doc_id"],
            "gold_in_corpus": pair["doc_id"] in self._corpus_ids,
            "answer": (message.content or "")[:2000],
            "status": message.status,
            "error": error or (message.error or None if message.status == "error" else None),
            "cited_documents": cited_docs,
            "retrieved_documents": retrieved_docs,
            "citations": len(citations),
            "citations_valid": ev.citations_valid(citations, {p.n: _chunk_ids(p) for p in passages}),
            "source_hit": float(pair["doc_id"] in cited_docs),
            # A corpus can hold the same article twice (the CMU data has each article once per
            # year): citing a document with the gold document's title counts here.
            "source_hit_title": float(pair["doc_id"] in cited_docs or bool(gold_title and gold_title in cited_titles)),
            "retrieval_hit": float(pair["doc_id"] in retrieved_docs),
            **scores,
            "latency_s": round(latency, 2),
            "first_token_ms": message.first_token_ms,
        }

    # --- ingestion -----------------------------------------------------------------------------
    def _ingest(self, path: Path, name: str, options):
        """The connector over `path`, synced in this process; returns it with the sync's numbers."""
        from connectors.models import Chunk, Connector, Document, SyncRun
        from connectors.services import ConnectorInvalid, connector_save

        name = " ".join(name.split())
        config = {"path": str(path)}
        connector = Connector.objects.filter(name=name).first()
        if connector is not None and (connector.kind != "jsonl" or connector.config.get("path") != str(path)):
            raise CommandError(
                f"A connector named {name!r} already exists over something else ({connector.kind}: "
                f"{connector.config.get('path', '')}); pass --name to use another name."
            )
        try:
            if connector is None:
                connector = connector_save(name=name, kind="jsonl", config=config, is_public=True)
                self.stderr.write(f"created connector {name!r} over {path}")
            else:
                self.stderr.write(f"reusing connector {name!r} (unchanged documents are skipped)")
        except ConnectorInvalid as exc:
            raise CommandError(str(exc)) from None
        self._corpus_titles = _corpus_titles(path)
        self._corpus_ids = set(self._corpus_titles)

        started = time.monotonic()
        progress = _Progress(connector.id, options["progress_seconds"], self.stderr)
        progress.start()
        try:
            run = self._sync(connector)
        finally:
            progress.stop()
        seconds = time.monotonic() - started
        if run.status != SyncRun.Status.SUCCEEDED:
            raise CommandError(f"The sync of {name!r} ended {run.status}: {run.error or run.notes}")
        documents = Document.objects.filter(connector=connector)
        indexed = documents.filter(index_status=Document.IndexStatus.INDEXED).count()
        summary = {
            "path": str(path),
            "sha256": _sha256(path)[:16],
            "ids_in_file": len(self._corpus_ids),
            "documents_indexed": indexed,
            "chunks": Chunk.objects.filter(connector=connector).count(),
            "added": run.added,
            "updated": run.updated,
            "unchanged": run.unchanged,
            "failed": run.failed,
            "seconds": round(seconds, 1),
        }
        self.stderr.write(
            f"ingested {name!r}: {indexed} documents, {summary['chunks']} chunks "
            f"({run.added} added, {run.updated} updated, {run.unchanged} unchanged, {run.failed} failed) "
            f"in {seconds:.1f}s"
        )
        if run.failed:
            for failure in run.failures.all()[:5]:
                self.stderr.write(f"  failed {failure.external_id}: {failure.reason}")
        return connector, summary

    def _sync(self, connector):
        """Run a sync to its end here: tasks are eager, so connector_sync_start executes it inline
        once its transaction commits; a run it could not execute (queued inside an outer
        transaction, or left by a killed process) is executed or waited for."""
        from connectors.models import SyncRun
        from connectors.services import connector_sync_start
        from connectors.sync import SyncBusy, sync_run_execute

        deadline = time.monotonic() + SYNC_WAIT_SECONDS
        while True:
            run = connector_sync_start(connector=connector)
            run.refresh_from_db()
            if run.status in SyncRun.ACTIVE:
                try:
                    sync_run_execute(run.id)
                except SyncBusy:
                    pass
                run.refresh_from_db()
            if run.status not in SyncRun.ACTIVE:
                return run
            if time.monotonic() > deadline:
                raise CommandError(f"Sync run {run.id} of {connector.name!r} is still {run.status} in another process.")
            self.stderr.write(f"waiting for sync run {run.id} ({run.status}) held by another process...")
            time.sleep(5)

    def _cleanup(self, connector, options) -> None:
        from connectors.services import connector_delete

        if options["keep"]:
            self.stderr.write(f"kept connector {connector.name!r} (--keep)")
            return
        connector_delete(connector=connector)

    # --- output ----------------------------------------------------------------------------------
    def _finish(self, report: dict, options) -> None:
        if report["kind"] == "retrieval":
            table = ev.format_table(report["metrics"], RETRIEVAL_COLUMNS)
            title = f"{report['dataset']} ({report['split']}, {report['queries']} queries)"
        else:
            table = ev.format_table({"answers": report["metrics"]}, ANSWER_COLUMNS)
            title = f"{report['dataset']} ({report['questions']} questions, model {report['settings']['llm_model']})"
        self.stdout.write(f"{title}, {report['timing']['total_s']}s\n{table}\n")
        printed = {k: v for k, v in report.items() if k != "items"}
        self.stdout.write(json.dumps(printed, indent=2) + "\n")
        for target in (options["json_out"], options["save_baseline"]):
            if target:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(report, indent=2) + "\n")
                self.stderr.write(f"wrote {target}")
        if options["baseline"]:
            try:
                baseline = json.loads(options["baseline"].read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read baseline {options['baseline']}: {exc}") from None
            for key in ("kind", "dataset", "split", "queries", "questions"):
                if key in baseline and baseline.get(key) != report.get(key):
                    self.stderr.write(f"warning: baseline {key} is {baseline.get(key)!r}, this run's {report.get(key)!r}")
            expected = dict(baseline.get("metrics", {}))
            if report["kind"] == "retrieval":
                # Modes left out on purpose (--modes) are not compared; a metric missing from an
                # evaluated mode still counts as a regression.
                skipped = sorted(set(expected) - set(report["metrics"]))
                if skipped:
                    self.stderr.write(f"note: baseline modes not evaluated in this run: {', '.join(skipped)}")
                expected = {mode: values for mode, values in expected.items() if mode in report["metrics"]}
            regressions = ev.compare(report, {"metrics": expected}, options["tolerance"])
            if regressions:
                lines = "\n".join(f"  {r}" for r in regressions)
                raise CommandError(f"{len(regressions)} metric(s) fell below the baseline:\n{lines}", returncode=1)
            self.stdout.write(f"\nNo metric fell more than {options['tolerance']} below {options['baseline']}.")


# --- helpers ------------------------------------------------------------------------------------------


async def _collect(events) -> list[tuple[str, dict]]:
    collected = []
    async for name, data in events:
        if name != "token":
            collected.append((name, data))
    return collected


@contextlib.contextmanager
def _eager_tasks():
    """Index batches run inline, in this process (no worker needed), and their errors surface."""
    from assistant.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved


class _Progress:
    """Prints the sync's counters every few seconds from a thread (its own DB connection)."""

    def __init__(self, connector_id, every: float, out):
        self.connector_id, self.every, self.out = connector_id, every, out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evaluate-progress", daemon=True)
        self._started = time.monotonic()

    def start(self) -> None:
        if self.every > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        from connectors.models import SyncRun

        try:
            while not self._stop.wait(self.every):
                run = SyncRun.objects.filter(connector_id=self.connector_id, status__in=SyncRun.ACTIVE).first()
                if run is None:
                    continue
                elapsed = time.monotonic() - self._started
                total = f"/{run.total:,}" if run.total else ""
                rate = run.indexed / elapsed if elapsed else 0.0
                self.out.write(
                    f"  ingest {elapsed:5.0f}s: read {run.seen:,}{total} (unchanged {run.unchanged:,}, "
                    f"failed {run.failed:,}), indexed {run.indexed:,}/{run.to_index:,} ({rate:.1f} docs/s)"
                )
        except Exception as exc:  # progress is a courtesy: never break the evaluation
            self.out.write(f"  (progress unavailable: {exc.__class__.__name__})")
        finally:
            close_old_connections()
            connections.close_all()


def _chunk_ids(passage) -> set:
    """The chunks a passage given to the model was made of (its hit, and its neighbours or whole document)."""
    return {passage.chunk_id, *(segment.chunk_id for segment in getattr(passage, "segments", ()) or ())}


def _read_jsonl(path: Path):
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise CommandError(f"{path} line {number} is not JSON: {exc}") from None


def _read_queries(path: Path) -> dict[str, str]:
    return {str(row["_id"]): row["text"] for row in _read_jsonl(path) if str(row.get("text", "")).strip()}


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels: tab-separated `query-id corpus-id score`, with a header line."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if not line.strip() or (number == 1 and not parts[-1].strip().lstrip("-").isdigit()):
                continue  # blank, or the header
            if len(parts) != 3:
                raise CommandError(f"{path} line {number}: expected 'query-id<TAB>corpus-id<TAB>score'")
            qid, doc_id, score = (p.strip() for p in parts)
            try:
                qrels.setdefault(qid, {})[doc_id] = int(float(score))
            except ValueError:
                raise CommandError(f"{path} line {number}: the score {score!r} is not a number") from None
    return qrels


def _read_qa(path: Path) -> list[dict]:
    """Questions with their gold answers; a question asked of one document several times (answered
    by several people, as in the CMU data) becomes one question with several gold answers."""
    pairs: dict[tuple[str, str], dict] = {}
    for row in _read_jsonl(path):
        question = " ".join(str(row.get("question") or "").split())
        answer = row.get("answer")
        answers = [a for a in (answer if isinstance(answer, list) else [answer]) if isinstance(a, str) and a.strip()]
        doc_id = row.get("doc_id")
        if not question or not answers or doc_id in (None, ""):
            continue
        pair = pairs.setdefault(
            (question.lower(), str(doc_id)), {"id": row.get("id"), "question": question, "answers": [], "doc_id": str(doc_id)}
        )
        pair["answers"].extend(a for a in answers if a not in pair["answers"])
    return list(pairs.values())


def _corpus_titles(path: Path) -> dict[str, str]:
    """External id -> normalised title of every line of a JSON Lines corpus (_id, title)."""
    titles = {}
    for row in _read_jsonl(path):
        if isinstance(row, dict) and row.get("_id") not in (None, ""):
            titles[str(row["_id"]).strip()] = ev.normalize_answer(str(row.get("title") or ""))
    return titles


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _evaluator():
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(username="evaluator", defaults={"is_active": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _index_settings() -> dict:
    return {
        "embedding_model": settings.EMBEDDING_MODEL,
        "chunk_tokens": settings.CHUNK_TOKENS,
        "chunk_overlap_tokens": settings.CHUNK_OVERLAP_TOKENS,
        "rrf_k": settings.RAG_RRF_K,
        "dense_weight": settings.RAG_DENSE_WEIGHT,
        "fulltext_weight": settings.RAG_FULLTEXT_WEIGHT,
        "fulltext_languages": list(settings.RAG_FULLTEXT_LANGUAGES),
        "fulltext_ranking": "bm25",
        "bm25_k1": settings.RAG_BM25_K1,
        "bm25_b": settings.RAG_BM25_B,
        "fulltext_max_candidates": settings.RAG_FULLTEXT_MAX_CANDIDATES,
        "ef_search": settings.RAG_EF_SEARCH,
    }


def _parse_overrides(items: list[str]) -> dict:
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isupper() or not hasattr(settings, key):
            raise CommandError(f"--set takes SETTING=VALUE with an existing setting name; got {item!r}")
        current = getattr(settings, key)
        try:
            if isinstance(current, bool):
                value = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(current, int):
                value = int(raw)
            elif isinstance(current, float):
                value = float(raw)
            elif isinstance(current, (list, tuple)):
                value = [part.strip() for part in raw.split(",") if part.strip()]
            else:
                value = raw
        except ValueError:
            raise CommandError(f"--set {key}: {raw!r} is not a valid {type(current).__name__}") from None
        overrides[key] = value
    return overrides


def _jsonable(value):
    return value if isinstance(value, (int, float, str, bool, list, type(None))) else str(value)


def _round(value, digits: int = 2):
    return None if value is None else round(value, digits)
