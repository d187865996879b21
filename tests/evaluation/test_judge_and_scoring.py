"""The judge's reply parsed robustly, and the scoring rules, without a database."""

from __future__ import annotations

import pytest

from assistant.evaluation.judge import parse_verdict
from assistant.evaluation.scoring import Expected, Observed, failures, is_refusal, score


@pytest.mark.parametrize("reply", [
    '{"faithfulness": 4, "agreement": 5, "reasons": "ok"}',
    'Here is my grade:\n```json\n{"faithfulness": 4, "agreement": 5, "reasons": "ok",}\n```',
    "Sure! {'faithfulness': 4, 'agreement': 5, 'reasons': 'ok'} Hope this helps.",
    '{"Faithfulness": "4/5", "Agreement": 5, "Reasons": "ok"}',
    "Faithfulness: 4\nAgreement: 5\nReasons: ok",
])
def test_a_verdict_is_read_from_many_shapes(reply):
    verdict = parse_verdict(reply)
    assert verdict["faithfulness"] == 0.75 and verdict["agreement"] == 1.0 and verdict["reasons"] == "ok"
    assert verdict["parsed"]


@pytest.mark.parametrize("reply", ["", "I cannot grade this.", '{"faithfulness": 9, "agreement": 0}', "{broken"])
def test_a_reply_without_a_grade_is_not_guessed(reply):
    verdict = parse_verdict(reply)
    assert verdict["faithfulness"] is None and verdict["agreement"] is None and not verdict["parsed"]
    assert failures({"judge_faithfulness": None}) == []


def test_refusals_are_recognised_in_english_and_french():
    assert is_refusal("I could not find this in the company's documents.")
    assert is_refusal("Je n'ai pas trouvé cette information dans les documents.")
    assert not is_refusal("Train travel is first class from 2024 [1].")


def test_metrics_a_case_does_not_ask_for_are_left_out():
    metrics = score(Expected(), Observed(answer="Hello"))
    assert all(value is None for value in metrics.values())
    assert failures(metrics) == []


def test_a_source_with_the_same_title_counts_as_found():
    expected = Expected(sources=[{"kind": "document", "connector": "C", "external_id": "S08/a1", "title": "Kangaroo"}])
    seen = [{"connector": "C", "external_id": "S09/a1", "title": "kangaroo", "cited": True}]
    assert score(expected, Observed(answer="Yes [1].", sources=seen, written={1}, kept={1}))["source_cited"] == 1.0
    other = [{"connector": "D", "external_id": "S08/a1", "title": "Kangaroo", "cited": True}]
    assert score(expected, Observed(answer="Yes", sources=other))["source_retrieved"] == 0.0


def test_a_query_result_is_found_by_a_successful_query_of_its_database():
    expected = Expected(sources=[{"kind": "query", "connector": "Sales DB", "sql": "select 1"}])
    ran = Observed(answer="42", queries=[{"connector": "Sales DB", "ok": True}])
    failed = Observed(answer="42", queries=[{"connector": "Sales DB", "ok": False}])
    assert score(expected, ran)["source_retrieved"] == 1.0 and score(expected, failed)["source_retrieved"] == 0.0
