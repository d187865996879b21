"""Property: whatever sequence of tool calls a model makes, no tool result (its content, its
sources, the passages it adds to the answer's book, its error message) carries a chunk, title or
document the acting user may not see.

The world (users, groups, connectors with ACLs and folder mappings, documents with their own
ACLs, changes) is tests/rag/test_acl_property.py's, with its independent model of the rules.
Each user runs a generated sequence of search_knowledge (random words, sources, dates),
read_document (any document, denied ones included, and parts) and list_sources calls through
the registry, before and after the generated changes.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from assistant.agent.registry import ToolContext, ToolError, tool_named
from connectors.models import Document
from connectors.selectors import acl_groups_of
from tests.rag.test_acl_property import (
    COMMON_WORD, EXAMPLES, BagOfWordsEmbedder, Model, _build, apply_change, world,
)

CONNECTOR_NAMES = ["Database", "Intranet", "Share"]
words = st.sampled_from([COMMON_WORD, "report", "team", "codename", "Secret3", "Title5", "nothing"])
search_call = st.fixed_dictionaries(
    {"query": st.lists(st.one_of(words, st.integers(0, 7).map(lambda i: f"token{i}")), min_size=1, max_size=4)
              .map(" ".join)},
    optional={
        "sources": st.lists(st.sampled_from([*CONNECTOR_NAMES, "Nowhere"]), min_size=1, max_size=3),
        "after": st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)).map(str),
        "before": st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)).map(str),
        "top_k": st.integers(1, 10),
    },
)
tool_call = st.one_of(
    st.tuples(st.just("search_knowledge"), search_call),
    st.tuples(st.just("read_document"), st.integers(0, 7), st.none() | st.integers(1, 3)),
    st.tuples(st.just("list_sources")),
)
scenario = st.fixed_dictionaries({"world": world, "calls": st.lists(tool_call, min_size=1, max_size=6)})


def _expected_connectors(model: Model, user: str) -> set[str]:
    """Connectors the model says the user may see: shared with them, or holding a document they may read."""
    if not model.active[user]:
        return set()
    names = set()
    for index, connector in enumerate(model.connectors):
        if connector["public"] or model.members[user] & connector["groups"]:
            names.add(CONNECTOR_NAMES[index])
    for index, doc in enumerate(model.documents):
        if model.visible(user, index):
            names.add(CONNECTOR_NAMES[doc["connector"]])
    return names


def _assert_nothing_hidden(text: str, hidden: set[int], documents, where: str) -> None:
    for index in hidden:
        assert f"Title{index}" not in text and f"Secret{index} " not in text, f"{where} shows document {index}"
        assert str(documents[index].id) not in text or where.startswith("error of read"), f"{where} names {index}"


def _call(user: str, context: ToolContext, call, model: Model, documents) -> None:
    tool = tool_named(call[0])
    allowed = {i for i in range(len(documents)) if model.visible(user, i)}
    hidden = set(range(len(documents))) - allowed
    ids = {str(d.id): i for i, d in enumerate(documents)}
    if call[0] == "search_knowledge":
        arguments = call[1]
    elif call[0] == "read_document":
        index = call[1] % len(documents)
        arguments = {"document": str(documents[index].id), **({"part": call[2]} if call[2] else {})}
    else:
        arguments = {}
    try:
        result = tool.run(context, tool.parse(arguments))
    except ToolError as error:
        if call[0] == "read_document":
            assert call[1] % len(documents) in hidden or call[2] or not model.active[user], f"{user} refused {arguments}"
        _assert_nothing_hidden(str(error), hidden, documents, f"error of {call[0]}")
        return
    assert model.active[user], f"a disabled account ({user}) got a result"
    _assert_nothing_hidden(result.content, hidden, documents, f"{call[0]} for {user}")
    assert {ids[s["document_id"]] for s in result.sources} <= allowed, f"{call[0]} sources for {user}"
    if call[0] == "read_document":
        assert call[1] % len(documents) in allowed
    if call[0] == "list_sources":
        listed = {n for n in CONNECTOR_NAMES if f"- {n}\n" in result.content}
        assert listed == _expected_connectors(model, user), f"{user} lists {listed}"


def _run_calls(model: Model, users, documents, calls) -> None:
    for name, user in users.items():
        user.refresh_from_db()
        context = ToolContext(user_id=user.pk, groups=acl_groups_of(user), result_tokens=400)
        for call in calls:
            _call(name, context, call, model, documents)
        allowed = {str(documents[i].id) for i in range(len(documents)) if model.visible(name, i)}
        for passage in context.book.passages:  # what the answer could cite
            assert passage.document_id in allowed, f"{name}'s book holds a document they may not see"
            for index in range(len(documents)):
                if str(documents[index].id) not in allowed:
                    assert f"Secret{index} " not in passage.text and passage.title != f"Title{index}"
            segment_docs = set(
                Document.objects.filter(chunks__id__in=[s.chunk_id for s in passage.segments])
                .values_list("id", flat=True)
            )
            assert {str(d) for d in segment_docs} <= {passage.document_id}


@pytest.mark.django_db
@hsettings(
    max_examples=max(EXAMPLES // 3, 5),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=scenario)
def test_no_tool_result_carries_a_chunk_title_or_document_the_user_may_not_see(spec, monkeypatch):
    monkeypatch.setattr("assistant.rag.retrieval.get_embedder", lambda: BagOfWordsEmbedder())
    with transaction.atomic():
        model = Model(spec["world"])
        groups, users, connectors, documents = _build(spec["world"], model, monkeypatch)
        _run_calls(model, users, documents, spec["calls"])
        for step in spec["world"]["changes"]:
            apply_change(step, model, groups, users, connectors)
        _run_calls(model, users, documents, spec["calls"])
        transaction.set_rollback(True)
