"""search_knowledge: the hybrid search as a tool, under the acting user's ACL."""

from __future__ import annotations

import pytest

from assistant.agent.registry import ToolError, tool_named
from tests.agent.conftest import context_for

TOOL = tool_named("search_knowledge")


def search(context, **arguments):
    return TOOL.run(context, TOOL.parse(arguments))


def test_teammate_finds_the_restricted_passage_and_outsider_does_not(knowledge, teammate, outsider):
    mine = search(context_for(teammate), query="salary band of a senior engineer")
    theirs = search(context_for(outsider), query="salary band of a senior engineer")
    assert "Salary bands" in mine.content and "95,000" in mine.content
    assert "Salary bands" in {s["title"] for s in mine.sources}
    assert "Salary" not in theirs.content and "95,000" not in theirs.content
    assert {s["title"] for s in theirs.sources} <= {"Travel policy 2023", "Travel policy 2024"}


def test_passages_are_numbered_with_title_source_and_document_id(knowledge, teammate):
    context = context_for(teammate)
    result = search(context, query="travel policy train", sources=["Handbook"])
    first = context.book.passages[0]
    assert result.content.startswith(f"[1] {first.title} (Handbook, document {first.document_id})\n")
    assert result.summary == "Found 2 passages in 2 documents"
    assert {s["connector"] for s in result.sources} == {"Handbook"}
    assert set(result.sources[0]) == {"title", "url", "connector", "document_id", "kind"}


def test_numbers_carry_on_across_steps_and_a_passage_seen_twice_keeps_its_number(knowledge, teammate):
    context = context_for(teammate)
    search(context, query="travel policy 2023", sources=["Handbook"], top_k=1)
    seen = context.book.passages[0]
    result = search(context, query="salary band senior engineer", top_k=3)
    assert [p.n for p in context.book.passages] == list(range(1, len(context.book.passages) + 1))
    assert f"[{seen.n}] {seen.title}" in result.content or seen.title not in result.content


def test_it_narrows_by_modification_date(knowledge, teammate):
    newer = search(context_for(teammate), query="travel policy train", after="2024-01-01")
    older = search(context_for(teammate), query="travel policy train", before="2023-12-31")
    assert "Travel policy 2024" in newer.content and "Travel policy 2023" not in newer.content
    assert "Travel policy 2023" in older.content and "Travel policy 2024" not in older.content


def test_a_source_the_user_may_not_see_is_as_unknown_as_one_that_does_not_exist(knowledge, outsider):
    with pytest.raises(ToolError) as hidden:
        search(context_for(outsider), query="salary", sources=["Engineering"])
    with pytest.raises(ToolError) as missing:
        search(context_for(outsider), query="salary", sources=["Nowhere"])
    assert str(hidden.value).replace("Engineering", "X") == str(missing.value).replace("Nowhere", "X")
    assert "list_sources" in str(hidden.value)


def test_the_assistants_connectors_bound_the_search(knowledge, teammate):
    public, secret = knowledge
    result = search(context_for(teammate, connectors=[public]), query="salary band senior engineer")
    assert "Salary" not in result.content
    with pytest.raises(ToolError):
        search(context_for(teammate, connectors=[public]), query="salary", sources=["Engineering"])


def test_a_result_over_the_budget_is_cut_with_a_note_saying_how_to_get_more(knowledge, teammate):
    context = context_for(teammate, result_tokens=110)
    result = search(context, query="travel policy train salary", top_k=5)
    assert result.truncated
    assert "read_document" in result.content
    assert "did not fit" in result.content or "was cut" in result.content
    shown = {p.document_id for p in context.book.passages}
    assert {s["document_id"] for s in result.sources} == shown  # only what was shown counts as a source


@pytest.mark.parametrize(
    "arguments, fix",
    [
        ({"query": "   "}, "query"),
        ({"query": "x", "after": "2024-05-01", "before": "2024-01-01"}, "after"),
        ({"query": "x", "top_k": 500}, "top_k"),
        ({"query": "x", "after": "last week"}, "after"),
        ({"query": "x", "colour": "red"}, "colour"),
        ({}, "query"),
    ],
)
def test_bad_arguments_say_what_to_fix(arguments, fix):
    with pytest.raises(ToolError) as error:
        TOOL.parse(arguments)
    assert fix in str(error.value)


def test_nothing_found_says_so(knowledge, outsider):
    result = search(context_for(outsider), query="zebra", sources=["Handbook"], after="2030-01-01")
    assert result.summary == "Found nothing" and not result.sources


def test_its_label_shows_the_query(knowledge):
    assert TOOL.label(TOOL.parse({"query": "travel policy 2024"})) == "Searching “travel policy 2024”…"
    assert TOOL.label({"raw": "{not json"}) == "Searching the documents…"


def test_a_disabled_account_reads_nothing_even_public(knowledge, outsider):
    context = context_for(outsider)
    outsider.is_active = False
    outsider.save(update_fields=["is_active"])
    with pytest.raises(ToolError):
        search(context, query="travel policy")
