"""Measure retrieval and answer quality on public data sets, through the real pipeline.

    manage.py evaluate retrieval [--beir DIR ...] [--handbook [LANGUAGE]] [--modes dense,fulltext,hybrid] ...
    manage.py evaluate answers --corpus DOCS.jsonl --qa QA.jsonl [--limit 50] [--llm-url URL] ...
    manage.py evaluate sql --questions QUESTIONS.jsonl --source CONNECTOR [--user NAME] [--gold] ...

Both ingest the corpus with a "jsonl" connector named "evaluation: <name>", synced in this
process with the index tasks run inline (assistant/rag/evaluation does the work). `retrieval`
ranks documents for every judged query in each search mode, on each corpus named (BEIR
directories, and the Debian Administrator's Handbook of the `debian-handbook` package with the
questions of docs/evaluation/debian-handbook), and prints one table; `answers` asks each question through
the chat pipeline (question_submit + answer_events, the code the chat view runs). `sql` asks the
model for one SELECT per question over a database connector's datasets, runs it governed as a user
and scores it by execution against the gold SQL (assistant/rag/evaluation/sql.py); `--gold` scores
the gold SQL itself, which must give 1.0.

Results print as a table and as JSON; `--save-baseline FILE` stores them, and
`--baseline FILE --tolerance T` exits with status 1 when a metric falls more than T below
the baseline, so CI can gate on quality. The connector (and the evaluation's conversations)
are removed afterwards unless `--keep` is given; use a database of its own for evaluations,
as the connector is public while it exists.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings

from assistant.chat import answering
from assistant.chat.models import Conversation, Message
from assistant.chat.services import conversation_create, question_submit
from assistant.rag.evaluation import answers, retrieval, sql
from assistant.rag.evaluation.corpus import eager_tasks
from assistant.rag.evaluation.datasets import EvaluationError, beir_corpus
from assistant.rag.evaluation.handbook import DEFAULT_LANGUAGE, HANDBOOK_HTML_ROOT, handbook_corpus
from assistant.rag.evaluation.report import (
    Regressed, jsonable, parse_overrides, report_compare, report_print, report_save,
)


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

        p = sub.add_parser("retrieval", help="nDCG@10, Recall@10/100, MRR@10 per search mode and corpus.")
        p.add_argument("--beir", type=Path, action="append", default=[],
                       help="BEIR directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (repeatable).")
        p.add_argument("--handbook", nargs="?", const=DEFAULT_LANGUAGE, metavar="LANGUAGE",
                       help=f"The Debian Administrator's Handbook, one document per section, with the questions of "
                            f"docs/evaluation/debian-handbook; LANGUAGE is an edition (default {DEFAULT_LANGUAGE}).")
        p.add_argument("--handbook-html", type=Path, default=HANDBOOK_HTML_ROOT,
                       help=f"Folder of the handbook's editions (default {HANDBOOK_HTML_ROOT}).")
        p.add_argument("--split", default="test")
        p.add_argument("--modes", default=",".join(retrieval.ALL_MODES), help="Comma-separated: dense,fulltext,hybrid.")
        p.add_argument("--limit", type=int, help="Only the first N judged queries.")
        p.add_argument("--candidates", type=int, default=settings.RAG_CANDIDATES,
                       help="Candidates per side (vector, full text) before fusion (default: the product's RAG_CANDIDATES).")
        p.add_argument("--chunks", type=int, default=None,
                       help="Chunks ranked per query before collapsing to documents (default: --candidates, so the "
                            "fused list is the product's; more widens each side).")
        common(p)

        p = sub.add_parser("answers", help="Source hit, EM/F1 and citation validity through the chat pipeline.")
        p.add_argument("--corpus", type=Path, required=True, help="JSON Lines documents (_id, title, text).")
        p.add_argument("--qa", type=Path, required=True, help="JSON Lines questions (question, answer, doc_id).")
        p.add_argument("--limit", type=int, default=50, help="How many questions (a seeded random sample).")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--llm-url", help="OpenAI-compatible base URL (default: LLM_BASE_URL).")
        p.add_argument("--llm-model", help="Model name (default: LLM_MODEL).")
        p.add_argument("--llm-api-key", help="API key (default: LLM_API_KEY).")
        p.add_argument("--max-tokens", type=int, help="Answer length limit (default: LLM_MAX_TOKENS).")
        common(p)

        p = sub.add_parser("sql", help="Execution accuracy of the model's SQL over a database connector's datasets.")
        p.add_argument("--questions", type=Path, required=True,
                       help="JSON Lines questions with gold SQL per dialect (id, question, postgres, mysql).")
        p.add_argument("--source", required=True, help="Name of the database connector to query.")
        p.add_argument("--user", help="Username to query as (default: a user 'evaluator' without groups).")
        p.add_argument("--gold", action="store_true", help="Score the gold SQL itself, without a model (must be 1.0).")
        p.add_argument("--limit", type=int, help="Only the first N questions.")
        p.add_argument("--timeout", type=float, default=getattr(settings, "SQL_TOOL_TIMEOUT", 5.0),
                       help="Statement timeout in seconds (default: the SQL tool's).")
        p.add_argument("--llm-url", help="OpenAI-compatible base URL (default: LLM_BASE_URL).")
        p.add_argument("--llm-model", help="Model name (default: LLM_MODEL).")
        p.add_argument("--llm-api-key", help="API key (default: LLM_API_KEY).")
        p.add_argument("--max-tokens", type=int, default=400, help="Answer length limit (default 400).")
        p.add_argument("--json-out", type=Path, help="Write the full JSON report to this file.")
        p.add_argument("--save-baseline", type=Path, help="Also write the report here, as the new baseline.")
        p.add_argument("--baseline", type=Path, help="Compare with this baseline; exit 1 on a regression.")
        p.add_argument("--tolerance", type=float, default=0.02, help="Allowed absolute drop per metric (default 0.02).")

    def handle(self, *args, **options):
        started = time.monotonic()
        try:
            overrides = parse_overrides(options.get("overrides") or [])
            with override_settings(**overrides), eager_tasks():
                report = self._sql(options) if options["subcommand"] == "sql" else self._run(options)
            report["settings"]["overrides"] = {k: jsonable(v) for k, v in overrides.items()}
            report["timing"]["total_s"] = round(time.monotonic() - started, 1)
            columns = {"retrieval": retrieval.COLUMNS, "retrieval-suite": retrieval.COLUMNS,
                       "sql": sql.COLUMNS}.get(report["kind"], answers.COLUMNS)
            report_print(report, columns, self.stdout.write)
            report_save(report, options["json_out"], options["save_baseline"], log=self.stderr.write)
            if options["baseline"]:
                report_compare(report, options["baseline"], options["tolerance"], self.stderr.write)
                self.stdout.write(f"\nNo metric fell more than {options['tolerance']} below {options['baseline']}.")
        except Regressed as exc:
            raise CommandError(str(exc), returncode=1) from None
        except EvaluationError as exc:
            raise CommandError(str(exc)) from None

    def _run(self, options) -> dict:
        common = {"name": options["name"], "keep": options["keep"], "progress_seconds": options["progress_seconds"],
                  "log": self.stderr.write}
        if options["subcommand"] == "retrieval":
            modes = [m.strip() for m in options["modes"].split(",") if m.strip()]
            retrieval.check_modes(modes)
            return retrieval.retrieval_suite(
                corpora=_corpora(options), modes=modes, limit=options["limit"],
                candidates=options["candidates"], chunks=options["chunks"], **common,
            )
        llm = {
            "LLM_BASE_URL": (options["llm_url"] or settings.LLM_BASE_URL).rstrip("/"),
            "LLM_MODEL": options["llm_model"] or settings.LLM_MODEL,
            "LLM_API_KEY": options["llm_api_key"] or settings.LLM_API_KEY,
            "LLM_MAX_TOKENS": options["max_tokens"] or settings.LLM_MAX_TOKENS,
        }
        with override_settings(**llm), _chat_pipeline(keep=options["keep"]) as ask:
            return answers.answers_evaluate(
                corpus_file=options["corpus"], qa_file=options["qa"], limit=options["limit"], seed=options["seed"],
                ask=ask, llm=llm, **common,
            )


    def _sql(self, options) -> dict:
        user = _evaluator() if not options["user"] else get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named {options['user']!r}")
        llm = ask = None
        if not options["gold"]:
            llm = {
                "LLM_BASE_URL": (options["llm_url"] or settings.LLM_BASE_URL).rstrip("/"),
                "LLM_MODEL": options["llm_model"] or settings.LLM_MODEL,
                "LLM_API_KEY": options["llm_api_key"] or settings.LLM_API_KEY,
                "LLM_MAX_TOKENS": options["max_tokens"],
            }
            ask = sql.model_asker(llm)
        return sql.sql_evaluate(
            questions_file=options["questions"], connector_name=options["source"], user=user, ask=ask, llm=llm,
            limit=options["limit"], timeout_s=options["timeout"], log=self.stderr.write,
        )


def _corpora(options) -> list:
    corpora = [beir_corpus(root, options["split"]) for root in options["beir"]]
    if options["handbook"]:
        corpora.append(handbook_corpus(options["handbook"], html_root=options["handbook_html"]))
    if not corpora:
        raise EvaluationError("Name a corpus: --beir DIR (repeatable) and/or --handbook [LANGUAGE].")
    return corpora


@contextmanager
def _chat_pipeline(*, keep: bool):
    """`ask(question) -> Answered` through the chat's own code, as a dedicated evaluator user, one
    conversation per question; records the passages the pipeline put into the prompt."""
    user = _evaluator()
    conversations: list = []
    given: list = []
    real_build_messages = answering.build_messages

    def capturing_build_messages(*args, **kwargs):
        given.append(list(kwargs.get("passages") or []))
        return real_build_messages(*args, **kwargs)

    def ask(question: str) -> answers.Answered:
        given.clear()
        conversation = conversation_create(user=user)
        conversations.append(conversation.id)
        _, message = question_submit(conversation=conversation, content=question)
        events = async_to_sync(_collect)(answering.answer_events(message, user))
        message = Message.objects.get(id=message.id)
        error = next((data.get("message") for name, data in events if name == "error"), None)
        return answers.Answered(
            content=message.content or "", status=message.status,
            error=error or (message.error or None if message.status == "error" else None),
            citations=message.citations or [], passages=given[-1] if given else [],
            first_token_ms=message.first_token_ms,
        )

    answering.get_chat_client.cache_clear()
    answering.build_messages = capturing_build_messages
    try:
        yield ask
    finally:
        answering.build_messages = real_build_messages
        answering.get_chat_client.cache_clear()
        if not keep:
            Conversation.objects.filter(id__in=conversations).delete()


async def _collect(events) -> list[tuple[str, dict]]:
    return [(name, data) async for name, data in events if name != "token"]


def _evaluator():
    user, created = get_user_model().objects.get_or_create(username="evaluator", defaults={"is_active": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
