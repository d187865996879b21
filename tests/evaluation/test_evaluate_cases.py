"""`manage.py evaluate cases`: the cases through the real pipeline (answer_events, the agent path,
retrieval under the ACL) against the scripted model server, scored, stored, gated on a baseline."""

from __future__ import annotations

import json

import pytest
from django.core.management.base import CommandError

from assistant.evaluation.models import CaseResult, EvaluationRun
from tests.chat.scripted_llm import Say
from tests.evaluation.conftest import TRAVEL, evaluate, make_case

GOOD = "Train travel is first class from 2024 {cite:Travel policy 2024}."


def _only_result() -> CaseResult:
    return CaseResult.objects.get()


def test_a_good_answer_passes_every_check_and_the_run_is_stored(knowledge, scripted):
    scripted([Say(GOOD)])
    case = make_case(must_contain=["first class"], must_not_contain=["second class"])
    evaluate()
    run = EvaluationRun.objects.get()
    result = _only_result()
    assert run.status == "succeeded" and run.total == run.done == 1
    assert result.case_id == case.id and result.passed, result.failures
    assert {k: result.metrics[k] for k in ("source_retrieved", "source_cited", "citation_validity", "must_contain",
                                           "must_not_contain", "refusal")} == dict.fromkeys(
        ("source_retrieved", "source_cited", "citation_validity", "must_contain", "must_not_contain", "refusal"), 1.0)
    assert result.metrics["f1"] > 0.5
    assert result.first_token_ms is not None and result.total_ms >= result.first_token_ms
    assert result.prompt_tokens > 20 and result.completion_tokens > 5
    assert result.sources[0]["title"] == "Travel policy 2024" and result.sources[0]["cited"]
    assert run.config["model"] == "scripted" and len(run.config["prompts_version"]) == 12
    assert run.config["embedding_model"] and "top_k" in run.config["search"]
    assert run.metrics["passed"] == 1.0 and run.metrics["cases"] == 1


@pytest.mark.parametrize(
    ("answer", "fields", "failed"),
    [
        (GOOD, {"expected_sources": [{"kind": "document", "connector": "Handbook", "external_id": "canteen.md",
                                      "title": "Canteen"}]}, "source_cited"),
        ("Train travel is first class from 2024 [7].", {}, "citation_validity"),
        (GOOD, {"must_contain": ["sleeper car"]}, "must_contain"),
        ("Train travel is first class, not second class {cite:Travel policy 2024}.",
         {"must_not_contain": ["second class"]}, "must_not_contain"),
        (GOOD, {"expect_refusal": True, "expected_answer": "", "expected_sources": []}, "refusal"),
        ("I could not find this in the company's documents.", {}, "refusal"),
        (GOOD, {"expected_sources": [{"kind": "document", "connector": "Handbook", "external_id": "visa.md",
                                      "title": "Visa rules"}]}, "source_retrieved"),
    ],
    ids=["not-cited", "invalid-citation", "must-contain", "must-not-contain", "answered-instead-of-refusing",
         "refused-instead-of-answering", "source-not-retrieved"],
)
def test_a_case_fails_each_check(knowledge, scripted, answer, fields, failed):
    scripted([Say(answer)])
    make_case(**fields)
    evaluate()
    result = _only_result()
    assert not result.passed
    assert failed in result.failures, (result.failures, result.metrics, result.answer)
    assert result.metrics[failed] < 1.0


def test_a_wrong_answer_scores_a_low_f1(knowledge, scripted):
    scripted([Say("The canteen opens at noon {cite:Travel policy 2024}.")])
    make_case()
    evaluate()
    assert _only_result().metrics["f1"] < 0.3


def test_a_regression_exits_1_and_names_the_case(knowledge, scripted, tmp_path):
    model = scripted([Say(GOOD)])
    good = make_case(must_contain=["first class"])
    steady = make_case(question="Does the canteen serve vegetarian dishes?", expected_answer="Yes",
                       expected_sources=[], must_contain=["vegetarian"])
    model.replay([Say(GOOD), Say("Yes, vegetarian dishes.")])
    baseline = tmp_path / "baseline.json"
    evaluate("--json-out", str(baseline))
    model.replay([Say("Train travel is in second class."), Say("Yes, vegetarian dishes.")])
    with pytest.raises(CommandError) as raised:
        evaluate("--baseline", str(baseline), "--tolerance", "0.05")
    assert raised.value.returncode == 1
    message = str(raised.value)
    assert str(good.id) in message and str(steady.id) not in message
    assert "must_contain" in message and "passed" in message
    latest = EvaluationRun.objects.order_by("-created_at").first()
    assert any(r.get("metric") == "must_contain" for r in latest.regressions)


def test_the_baseline_can_be_the_last_run_and_an_unchanged_run_passes(knowledge, scripted, capsys):
    model = scripted([Say(GOOD)])
    make_case()
    evaluate()
    model.replay([Say(GOOD)])
    evaluate("--baseline", "last")
    assert "No metric fell" in capsys.readouterr().out
    assert EvaluationRun.objects.order_by("-created_at").first().baseline is not None


def test_the_judge_grades_with_reasons(knowledge, scripted):
    verdict = '```json\n{"faithfulness": 5, "agreement": 4, "reasons": "Supported by the cited policy.",}\n```'
    model = scripted([Say(GOOD), Say(verdict)])
    make_case()
    evaluate("--judge")
    result = _only_result()
    assert result.judge["reasons"] == "Supported by the cited policy."
    assert result.metrics["judge_faithfulness"] == 1.0 and result.metrics["judge_agreement"] == 0.75
    judge_prompt = model.requests[-1]["messages"]
    assert "faithfulness" in judge_prompt[0]["content"] and "Train travel is first class" in judge_prompt[1]["content"]


def test_a_low_judge_grade_fails_the_case(knowledge, scripted):
    scripted([Say(GOOD), Say("Faithfulness: 1. Agreement: 2. Reasons: it invents a date.")])
    make_case()
    evaluate("--judge")
    result = _only_result()
    assert "judge_faithfulness" in result.failures and result.judge["reasons"].startswith("it invents")


def test_earlier_turns_are_part_of_the_question(knowledge, scripted):
    model = scripted([Say(GOOD)])
    make_case(question="And in 2024?", history=[{"role": "user", "content": "How do we travel by train?"},
                                                {"role": "assistant", "content": "By train, in second class."}])
    evaluate()
    contents = json.dumps(model.requests[0]["messages"])
    assert "How do we travel by train?" in contents and "And in 2024?" in contents


def test_cases_are_filtered_by_tag(knowledge, scripted):
    scripted([Say(GOOD)])
    make_case(tags=["travel"])
    make_case(question="Who runs the canteen?", tags=["canteen"])
    evaluate("--tag", "travel")
    assert [r.question for r in CaseResult.objects.all()] == ["What class is train travel in 2024?"]


def test_a_case_about_a_group_document_is_not_run_for_an_outsider(knowledge, scripted, outsider, owner):
    from tests.evaluation.conftest import SALARIES

    scripted([Say("The band is 95,000 to 120,000 euros {cite:Salary bands}.")])
    make_case(question="What is the salary band of a senior engineer?", expected_sources=[SALARIES],
              expected_answer="95,000 to 120,000 euros", groups=["engineering"])
    with pytest.raises(CommandError, match="No evaluation case"):
        evaluate("--user", "outsider")
    evaluate("--user", "owner")  # in engineering: runs, as a user of the case's groups
    result = _only_result()
    assert result.passed, (result.failures, result.answer)


def test_a_case_runs_with_its_groups_only(knowledge, scripted):
    from tests.evaluation.conftest import SALARIES

    scripted([Say("I could not find it.")])
    make_case(question="What is the salary band of a senior engineer?", expected_sources=[SALARIES],
              expected_answer="95,000 to 120,000 euros", groups=[])
    evaluate()
    result = _only_result()
    assert result.metrics["source_retrieved"] == 0.0
    assert all(s["title"] != "Salary bands" for s in result.sources)


def test_bad_options_say_what_to_fix(knowledge, scripted):
    scripted([Say(GOOD)])
    make_case()
    with pytest.raises(CommandError, match="No assistant"):
        evaluate("--assistant", "Nobody")
    with pytest.raises(CommandError, match="No finished run or report file"):
        evaluate("--baseline", "0123456789abcdef")
    assert TRAVEL["title"]
