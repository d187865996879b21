"""The loop's small parts: joining streamed call fragments, what a step shows of bad arguments,
cutting a long result with a note."""

from __future__ import annotations

from assistant.agent.limits import cut_result
from assistant.agent.steps import merge_tool_calls, shown_arguments
from inference.tokens import approx_token_count


def test_fragments_of_several_calls_are_joined_by_index():
    calls: dict[int, dict] = {}
    merge_tool_calls(calls, [{"index": 0, "id": "abc", "type": "function",
                              "function": {"name": "search_knowledge", "arguments": '{"query": "tra'}}])
    merge_tool_calls(calls, [{"index": 1, "id": "def", "function": {"name": "list_sources", "arguments": ""}},
                             {"index": 0, "function": {"arguments": 'vel"}'}}])
    merge_tool_calls(calls, [{"index": 1, "function": {"arguments": {}}}, "not a fragment"])
    assert calls[0]["function"] == {"name": "search_knowledge", "arguments": '{"query": "travel"}'}
    assert calls[0]["id"] == "abc" and calls[1]["id"] == "def"
    assert calls[1]["function"] == {"name": "list_sources", "arguments": "{}"}  # an object sent whole


def test_a_step_shows_arguments_that_are_not_an_object_as_raw_text():
    assert shown_arguments('{"query": "x"}') == {"query": "x"}
    assert shown_arguments('{"query": ') == {"raw": '{"query": '}
    assert shown_arguments("[1, 2]") == {"raw": "[1, 2]"}
    assert shown_arguments("") == {}


def test_a_long_result_is_cut_within_its_budget_and_says_how_to_read_on():
    text = " ".join(f"w{n}" for n in range(3000))
    cut, was_cut = cut_result(text, 400)
    assert was_cut and approx_token_count(cut) <= 400
    assert cut.startswith("w0 w1") and "part=" in cut
    assert cut_result("short text", 400) == ("short text", False)
