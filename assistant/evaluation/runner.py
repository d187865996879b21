"""One case through the chat's own pipeline (answer_events: retrieval under the ACL, the agent
loop and its tools where the assistant has them, citations, saving), as a user with the case's
groups, in a conversation of its own that is deleted afterwards; then scored."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from assistant.chat import answering
from assistant.chat.models import Conversation, Message
from assistant.chat.services import question_submit
from assistant.evaluation import scoring
from assistant.evaluation.judge import judge_messages, parse_verdict
from assistant.evaluation.meter import ModelMeter
from assistant.evaluation.models import EvaluationCase
from connectors.models import Document
from inference.chat_client import ModelServerError

JUDGE_MAX_TOKENS = 300


def runner_user(groups: list[str]):
    """A user who only asks evaluation questions, in exactly `groups` (one per set of groups)."""
    groups = sorted(set(groups))
    digest = hashlib.sha1(",".join(groups).encode()).hexdigest()[:12] if groups else "nogroups"
    user, created = get_user_model().objects.get_or_create(username=f"evaluator-{digest}",
                                                         defaults={"is_active": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in groups])
    return user


def _conversation(case: EvaluationCase, *, user, assistant) -> tuple[Conversation, Message]:
    """The case's conversation and its question. Not one transaction around question_submit (its
    own): nested, it would cost a savepoint, two more round trips per case; on a failure what was
    made is deleted instead."""
    conversation = Conversation.objects.create(user=user, assistant=assistant)
    try:
        if case.history:
            _history_write(conversation, case.history)
        return conversation, question_submit(conversation=conversation, content=case.question)[1]
    except BaseException:
        conversation.delete()
        raise


@transaction.atomic
def _history_write(conversation: Conversation, history: list) -> None:
    parent = None
    for turn in history:
        if isinstance(turn, dict) and turn.get("role") in ("user", "assistant") and str(turn.get("content") or ""):
            parent = Message.objects.create(conversation=conversation, parent=parent, role=turn["role"],
                                            content=str(turn["content"]), status=Message.Status.COMPLETE)
    if parent is not None:
        conversation.active_leaf = parent
        conversation.save(update_fields=["active_leaf"])


async def _drain(events, started: float) -> tuple[float | None, str]:
    first, error = None, ""
    async for name, data in events:
        if name == "token" and first is None:
            first = time.monotonic() - started
        elif name == "error":
            error = str(data.get("message") or "error")
    return first, error


def _observed(message: Message, error: str) -> tuple[scoring.Observed, list[dict], list[dict]]:
    entries = [s for s in message.sources or () if isinstance(s, dict)]
    ids = [s.get("document_id") for s in entries if s.get("kind", "document") == "document" and s.get("document_id")]
    known = {str(d["id"]): d for d in Document.objects.filter(id__in=ids).values("id", "external_id", "connector__name")}
    sources = []
    for entry in entries:
        row = known.get(str(entry.get("document_id")), {})
        sources.append({"title": entry.get("title", ""), "connector": row.get("connector__name", entry.get("connector", "")),
                        "external_id": row.get("external_id", ""), "cited": bool(entry.get("cited")),
                        "document_id": str(entry.get("document_id") or "")})
    steps = [{"tool": s.get("tool"), "connector": (s.get("arguments") or {}).get("source", ""),
              "status": s.get("status"), "ok": s.get("status") == "done"}
             for s in message.steps or () if isinstance(s, dict)]
    queries = [s for s in steps if s["tool"] == "query_database"]
    observed = scoring.Observed(
        answer=message.content or "", sources=sources, queries=queries,
        written=scoring.written_citations(message.content or ""),
        kept={c.get("n") for c in message.citations or () if isinstance(c, dict)}, error=error,
    )
    return observed, sources, steps


def _judge(case: EvaluationCase, message: Message) -> dict:
    passages = [str(c.get("quote") or "") for c in message.citations or () if isinstance(c, dict)]
    prompt = judge_messages(question=case.question, expected=case.expected_answer, answer=message.content or "",
                            passages=passages)
    try:
        reply = async_to_sync(answering.get_chat_client().complete)(prompt, max_tokens=JUDGE_MAX_TOKENS,
                                                                   temperature=0)
    except ModelServerError as exc:
        return {"faithfulness": None, "agreement": None, "reasons": "", "parsed": False, "error": str(exc)}
    return parse_verdict(reply)


def expected_of(case: EvaluationCase) -> scoring.Expected:
    return scoring.Expected(
        answers=case.expected_answers, sources=list(case.expected_sources or ()),
        must_contain=list(case.must_contain or ()), must_not_contain=list(case.must_not_contain or ()),
        expect_refusal=case.expect_refusal,
    )


@dataclass
class CaseOutcome:
    """A case's result, as CaseResult stores it."""

    fields: dict


def case_run(case: EvaluationCase, *, groups: list[str], assistant=None, judge: bool = False,
             user=None, conversations: list | None = None) -> CaseOutcome:
    """Ask the case's question through the chat pipeline and score the answer. Its conversation is
    deleted afterwards, or, given `conversations`, added there for the caller to delete in one go."""
    user = user or runner_user(groups)
    conversation, message = _conversation(case, user=user, assistant=assistant or case.assistant)
    meter = ModelMeter()
    started = time.monotonic()
    try:
        with meter.attached(answering.get_chat_client()):
            first, error = async_to_sync(_drain)(answering.answer_events(message, user), started)
        total = time.monotonic() - started
        message.refresh_from_db()
        error = error or (message.error if message.status == Message.Status.ERROR else "")
        observed, sources, steps = _observed(message, error)
        metrics = scoring.score(expected_of(case), observed)
        verdict = _judge(case, message) if judge else {}
        if verdict:
            metrics["judge_faithfulness"], metrics["judge_agreement"] = verdict["faithfulness"], verdict["agreement"]
        failed = scoring.failures(metrics, error=error)
        metrics["passed"] = float(not failed)
        return CaseOutcome({
            "question": case.question, "answer": message.content or "", "status": message.status, "error": error,
            "sources": sources, "steps": steps, "metrics": metrics, "failures": failed, "passed": not failed,
            "judge": verdict, "first_token_ms": None if first is None else int(first * 1000),
            "total_ms": int(total * 1000), "model_ms": int(meter.model_s * 1000),
            "prompt_tokens": meter.prompt_tokens, "completion_tokens": meter.completion_tokens,
        })
    finally:
        if conversations is None:
            conversation.delete()
        else:
            conversations.append(conversation.id)
