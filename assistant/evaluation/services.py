"""Writing cases: from a chat message (prefilled), by hand, deleted. Validation says what to fix."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext as _

from assistant.chat.models import Feedback, Message
from assistant.chat.selectors import history_for, question_of
from assistant.evaluation.models import EvaluationCase
from assistant.rag.evaluation.metrics import strip_citations
from connectors.models import Document
from connectors.principals import group_names
from connectors.selectors import acl_groups_of

MAX_QUESTION_CHARS = 4000
MAX_ANSWER_CHARS = 20_000
MAX_PHRASES = 50
MAX_PHRASE_CHARS = 500
MAX_TAGS = 20
MAX_TAG_CHARS = 50
MAX_SOURCES = 50
MAX_HISTORY_TURNS = 20


class CaseInvalid(ValueError):
    """Input a staff member must fix; the message says how."""


@dataclass
class CaseData:
    question: str
    history: list[dict] = field(default_factory=list)
    assistant: object = None
    expected_answer: str = ""
    alternative_answers: list[str] = field(default_factory=list)
    expected_sources: list[dict] = field(default_factory=list)
    must_contain: list[str] = field(default_factory=list)
    must_not_contain: list[str] = field(default_factory=list)
    expect_refusal: bool = False
    tags: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    origin: str = EvaluationCase.Origin.MANUAL
    external_id: str = ""
    source_message: Message | None = None


def _phrases(values, name: str, *, limit: int = MAX_PHRASES, chars: int = MAX_PHRASE_CHARS) -> list[str]:
    out = []
    for value in values or ():
        text = " ".join(str(value).split())
        if not text:
            continue
        if len(text) > chars:
            raise CaseInvalid(_("Each line of “%(field)s” is limited to %(limit)s characters.")
                              % {"field": name, "limit": chars})
        if text not in out:
            out.append(text)
    if len(out) > limit:
        raise CaseInvalid(_("“%(field)s” takes at most %(limit)s lines.") % {"field": name, "limit": limit})
    return out


def _sources(values) -> list[dict]:
    out = []
    for value in values or ():
        if not isinstance(value, dict) or value.get("kind", "document") not in ("document", "query"):
            raise CaseInvalid(_("An expected source must be a document or a query result."))
        kind = value.get("kind", "document")
        keep = ("connector", "external_id", "title") if kind == "document" else ("connector", "sql", "title")
        source = {"kind": kind, **{k: str(value.get(k) or "")[:2000] for k in keep}}
        if (kind == "document" and not (source["external_id"] or source["title"])) or (
                kind == "query" and not source["connector"]):
            raise CaseInvalid(_("An expected document needs its id or title; a query result its database."))
        if source not in out:
            out.append(source)
    if len(out) > MAX_SOURCES:
        raise CaseInvalid(_("A case takes at most %(limit)s expected sources.") % {"limit": MAX_SOURCES})
    return out


def _history(turns) -> list[dict]:
    out = [{"role": t["role"], "content": str(t.get("content") or "")[:MAX_ANSWER_CHARS]}
           for t in turns or () if isinstance(t, dict) and t.get("role") in ("user", "assistant")]
    return out[-MAX_HISTORY_TURNS * 2:]


def clean(data: CaseData) -> dict:
    """The model's fields from `data`, or CaseInvalid."""
    question = str(data.question or "").strip()
    if not question:
        raise CaseInvalid(_("Write the question."))
    if len(question) > MAX_QUESTION_CHARS or len(data.expected_answer or "") > MAX_ANSWER_CHARS:
        raise CaseInvalid(_("The question is limited to %(q)s characters and the answer to %(a)s.")
                          % {"q": MAX_QUESTION_CHARS, "a": MAX_ANSWER_CHARS})
    tags = _phrases(data.tags, _("Tags"), limit=MAX_TAGS, chars=MAX_TAG_CHARS)
    if not (data.expected_answer or "").strip() and not data.expect_refusal and not data.must_contain \
            and not data.expected_sources:
        raise CaseInvalid(_("Say what a good answer holds: an expected answer, sources, phrases it must "
                            "contain, or that the documents do not say."))
    return {
        "question": question, "history": _history(data.history), "assistant": data.assistant,
        "expected_answer": (data.expected_answer or "").strip(),
        "alternative_answers": _phrases(data.alternative_answers, _("Other accepted answers"), chars=MAX_ANSWER_CHARS),
        "expected_sources": _sources(data.expected_sources),
        "must_contain": _phrases(data.must_contain, _("Must contain")),
        "must_not_contain": _phrases(data.must_not_contain, _("Must not contain")),
        "expect_refusal": bool(data.expect_refusal), "tags": tags,
        "groups": _phrases(data.groups, _("Groups"), limit=MAX_TAGS, chars=150),
        "origin": data.origin, "external_id": str(data.external_id or "")[:200],
        "source_message": data.source_message,
    }


@transaction.atomic
def case_create(*, data: CaseData, user) -> EvaluationCase:
    return EvaluationCase.objects.create(**clean(data), created_by=user)


@transaction.atomic
def case_update(*, case: EvaluationCase, data: CaseData) -> EvaluationCase:
    fields = clean(data)
    for name in ("origin", "source_message", "external_id"):
        fields.pop(name)
    for name, value in fields.items():
        setattr(case, name, value)
    case.save()
    return case


def case_delete(*, case: EvaluationCase) -> None:
    case.delete()


# ------------------------------------------------------------------ from an answer


def message_sources(message: Message) -> list[dict]:
    """What an answer saw, as expected sources to pick from: its documents (cited ones first) and
    the databases its tools queried. Each has "cited" (True for what the answer cited)."""
    entries = [s for s in message.sources or () if isinstance(s, dict) and s.get("kind", "document") == "document"]
    known = {str(d["id"]): d for d in Document.objects.filter(
        id__in=[e.get("document_id") for e in entries if e.get("document_id")]).values(
        "id", "external_id", "title", "connector__name")}
    out = []
    for entry in entries:
        row = known.get(str(entry.get("document_id")))
        if row:
            out.append({"kind": "document", "connector": row["connector__name"], "external_id": row["external_id"],
                        "title": row["title"], "cited": bool(entry.get("cited"))})
    for step in message.steps or ():
        arguments = step.get("arguments") or {} if isinstance(step, dict) else {}
        if step.get("tool") == "query_database" and step.get("status") == "done" and arguments.get("source"):
            out.append({"kind": "query", "connector": str(arguments["source"]), "sql": str(arguments.get("sql") or ""),
                        "title": str(arguments["source"]), "cited": True})
    return out


def case_prefill(*, message: Message) -> CaseData:
    """A case from an answer: its question and the turns before it, its assistant, the asker's
    groups; the answer as the expected answer when someone rated it up; its cited sources."""
    if message.role != Message.Role.ASSISTANT or message.status not in (Message.Status.COMPLETE,
                                                                         Message.Status.STOPPED):
        raise CaseInvalid(_("Only a finished answer can become an evaluation case."))
    rated_up = Feedback.objects.filter(message=message, rating=Feedback.Rating.UP).exists()
    sources = message_sources(message)
    return CaseData(
        question=question_of(message=message), history=history_for(message=message),
        assistant=message.conversation.assistant,
        expected_answer=strip_citations(message.content or "") if rated_up else "",
        expected_sources=[{k: v for k, v in s.items() if k != "cited"} for s in sources if s["cited"]],
        # groups only: a case runs as a user of these groups, never as the asker (their libraries)
        groups=group_names(acl_groups_of(message.conversation.user)),
        origin=EvaluationCase.Origin.FEEDBACK if Feedback.objects.filter(message=message).exists()
        else EvaluationCase.Origin.MESSAGE,
        source_message=message,
    )
