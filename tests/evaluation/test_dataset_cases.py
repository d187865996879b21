"""`evaluate answers --save-cases TAG`: a public question-answer set becomes cases, runnable as
`evaluate cases --tag TAG` (the CMU set shows on the page as a run history this way)."""

from __future__ import annotations

import json

from django.core.management import call_command

from assistant.evaluation.models import CaseResult, EvaluationCase
from tests.chat.scripted_llm import Say


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_answers_saves_its_questions_as_cases_that_then_run(db, scripted, tmp_path):
    corpus = _jsonl(tmp_path / "docs.jsonl", [
        {"_id": "k1", "title": "kangaroo", "text": "A kangaroo is a marsupial from the family Macropodidae."},
        {"_id": "l1", "title": "Abraham Lincoln", "text": "Abraham Lincoln was the sixteenth President."},
    ])
    qa = _jsonl(tmp_path / "qa.jsonl", [
        {"id": "q1", "question": "Is a kangaroo a marsupial?", "answer": "yes", "doc_id": "k1"},
        {"id": "q2", "question": "Is a kangaroo a marsupial?", "answer": "Yes, it is.", "doc_id": "k1"},
        {"id": "q3", "question": "Which President was Lincoln?", "answer": "the sixteenth", "doc_id": "l1"},
    ])
    model = scripted([Say("Yes {cite:kangaroo}."), Say("The sixteenth {cite:Abraham Lincoln}.")])
    call_command("evaluate", "answers", "--corpus", str(corpus), "--qa", str(qa), "--limit", "5",
                 "--llm-url", model.base_url, "--llm-model", "scripted", "--progress-seconds", "0",
                 "--save-cases", "cmu")
    cases = {c.question: c for c in EvaluationCase.objects.all()}
    assert set(cases) == {"Is a kangaroo a marsupial?", "Which President was Lincoln?"}
    kangaroo = cases["Is a kangaroo a marsupial?"]
    assert kangaroo.expected_answers == ["yes", "Yes, it is."] and kangaroo.tags == ["cmu"]
    assert kangaroo.origin == "dataset"
    assert kangaroo.expected_sources == [{"kind": "document", "connector": "evaluation: docs", "external_id": "k1",
                                          "title": "kangaroo"}]
    model.replay([Say("Yes {cite:kangaroo}."), Say("The sixteenth {cite:Abraham Lincoln}.")])
    call_command("evaluate", "cases", "--tag", "cmu")
    results = list(CaseResult.objects.all())
    assert len(results) == 2 and all(r.metrics["source_retrieved"] == 1.0 for r in results)
    # Saving again updates the same cases instead of adding copies.
    call_command("evaluate", "answers", "--corpus", str(corpus), "--qa", str(qa), "--limit", "5",
                 "--llm-url", model.base_url, "--llm-model", "scripted", "--progress-seconds", "0",
                 "--save-cases", "cmu")
    assert EvaluationCase.objects.count() == 2
