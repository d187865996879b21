"""Cases as JSON Lines, in the format `evaluate answers --qa` reads (question, answer, doc_id),
with the case's other fields beside them, so a set built in one installation runs in another.

    {"id": "…", "question": "…", "answer": ["…", "…"], "doc_id": "S08/data/set1/a1",
     "sources": [{"kind": "document", "connector": "Handbook", "external_id": "…", "title": "…"}],
     "history": [{"role": "user", "content": "…"}, …], "assistant": "HR", "must_contain": ["…"],
     "must_not_contain": ["…"], "expect_refusal": false, "tags": ["hr"], "groups": ["hr"]}

`answer` is a list when there are several accepted answers; `doc_id` is the first expected
document's id in its source (what `--qa` files call it). Only `question` is required on import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from django.db import transaction
from django.utils.translation import gettext as _

from assistant.chat.models import Assistant
from assistant.evaluation.models import EvaluationCase
from assistant.evaluation.services import CaseData, CaseInvalid, clean
from connectors.request_input import RequestInvalid, check_json_value

MAX_IMPORT_LINES = 10_000


def case_line(case: EvaluationCase) -> str:
    answers = case.expected_answers
    documents = [s for s in case.expected_sources if s.get("kind", "document") == "document"]
    row = {
        "id": case.external_id or str(case.id), "question": case.question,
        "answer": answers[0] if len(answers) == 1 else answers,
        "doc_id": documents[0].get("external_id", "") if documents else "",
        "sources": case.expected_sources, "history": case.history,
        "assistant": case.assistant.name if case.assistant else "",
        "must_contain": case.must_contain, "must_not_contain": case.must_not_contain,
        "expect_refusal": case.expect_refusal, "tags": case.tags, "groups": case.groups,
    }
    return json.dumps(row, ensure_ascii=False) + "\n"


def cases_jsonl(cases: Iterable[EvaluationCase]) -> Iterator[str]:
    for case in cases:
        yield case_line(case)


def _list(row: dict, name: str) -> list:
    value = row.get(name)
    if value in (None, ""):
        return []
    return value if isinstance(value, list) else [value]


def case_data(row, *, tags: list[str], assistants: dict[str, Assistant], origin: str) -> CaseData:
    """One line as CaseData (CaseInvalid saying what is wrong)."""
    if not isinstance(row, dict):
        raise CaseInvalid(_("Each line must be a JSON object."))
    try:
        check_json_value(row)
    except RequestInvalid as exc:
        raise CaseInvalid(str(exc)) from None
    answers = [a for a in _list(row, "answer") if isinstance(a, str) and a.strip()]
    sources = _list(row, "sources")
    if not sources and row.get("doc_id") not in (None, ""):
        sources = [{"kind": "document", "external_id": str(row["doc_id"]), "title": str(row.get("title") or "")}]
    name = str(row.get("assistant") or "")
    if name and name not in assistants:
        raise CaseInvalid(_("No assistant is named “%(name)s”.") % {"name": name})
    return CaseData(
        question=str(row.get("question") or ""), history=_list(row, "history"),
        assistant=assistants.get(name), expected_answer=answers[0] if answers else "",
        alternative_answers=answers[1:], expected_sources=sources,
        must_contain=_list(row, "must_contain"), must_not_contain=_list(row, "must_not_contain"),
        expect_refusal=bool(row.get("expect_refusal")), tags=[*_list(row, "tags"), *tags],
        groups=_list(row, "groups"), origin=origin, external_id=str(row.get("id") or ""),
    )


def _rows(lines: Iterable[str]):
    for number, line in enumerate(lines, start=1):
        if number > MAX_IMPORT_LINES:
            raise CaseInvalid(_("A file may hold at most %(limit)s cases.") % {"limit": MAX_IMPORT_LINES})
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError:
            raise CaseInvalid(_("Line %(n)s is not JSON.") % {"n": number}) from None


@transaction.atomic
def cases_import(lines: Iterable[str], *, user, tags: list[str] = (), origin: str = EvaluationCase.Origin.IMPORT,
                 ) -> tuple[int, int]:
    """Create the cases of a JSON Lines file; a case already here (same id from the same set, or the
    same question and tags) is updated. All or nothing: returns (created, updated)."""
    assistants = {a.name: a for a in Assistant.objects.all()}
    created = updated = 0
    for number, row in _rows(lines):
        try:
            fields = clean(case_data(row, tags=list(tags), assistants=assistants, origin=origin))
        except CaseInvalid as exc:
            raise CaseInvalid(_("Line %(n)s: %(error)s") % {"n": number, "error": exc}) from None
        existing = (EvaluationCase.objects.filter(external_id=fields["external_id"]).first()
                    if fields["external_id"] else None)
        if existing is None:
            existing = EvaluationCase.objects.filter(question=fields["question"], tags=fields["tags"]).first()
        if existing is None:
            EvaluationCase.objects.create(**fields, created_by=user)
            created += 1
        else:
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.save()
            updated += 1
    return created, updated
