"""list_sources: the connectors the acting user may search, with what the model needs to pick."""

from __future__ import annotations

import pytest

from assistant.agent.registry import ToolError, all_tools, default_tool_names, tool_named
from connectors.models import Connector, Document
from tests.agent.conftest import context_for

TOOL = tool_named("list_sources")


def listing(context):
    return TOOL.run(context, TOOL.parse({}))


def test_teammate_sees_both_sources_and_outsider_only_the_public_one(knowledge, teammate, outsider):
    mine = listing(context_for(teammate))
    theirs = listing(context_for(outsider))
    assert "- Handbook" in mine.content and "- Engineering" in mine.content and mine.summary == "2 sources"
    assert "- Handbook" in theirs.content and "Engineering" not in theirs.content and theirs.summary == "1 source"
    assert "about: Company policies" in theirs.content
    assert "2 documents you may read" in theirs.content
    assert "last synced: 20" in theirs.content and "folder" in theirs.content


def test_counts_only_the_documents_the_user_may_read(knowledge, outsider, sales):
    public, _secret = knowledge
    Document.objects.create(connector=public, external_id="x", title="Hidden", text="t", content_hash="h",
                            acl_groups=["nobody"], acl_from_source=True)
    assert "2 documents you may read" in listing(context_for(outsider)).content


def test_a_document_shared_by_its_own_acl_makes_its_connector_visible(knowledge, outsider):
    _public, secret = knowledge
    Document.objects.create(connector=secret, external_id="y", title="Sales deck", text="t", content_hash="h",
                            acl_groups=["sales"], acl_from_source=True)
    assert "- Engineering" in listing(context_for(outsider)).content
    assert "1 document you may read" in listing(context_for(outsider)).content


def test_the_assistants_connectors_bound_the_list(knowledge, teammate):
    public, _secret = knowledge
    result = listing(context_for(teammate, connectors=[public]))
    assert "Engineering" not in result.content and "- Handbook" in result.content


def test_a_disabled_account_gets_a_tool_error(knowledge, outsider):
    outsider.is_active = False
    outsider.save(update_fields=["is_active"])
    with pytest.raises(ToolError):
        listing(context_for(outsider))


def test_no_source_at_all(db, outsider):
    Connector.objects.all().delete()
    assert listing(context_for(outsider)).summary == "No sources"


def test_the_three_knowledge_tools_are_on_by_default_and_served_over_mcp():
    names = {"search_knowledge", "read_document", "list_sources"}
    assert names <= set(default_tool_names())
    assert names <= {t.name for t in all_tools() if t.mcp}
    with pytest.raises(ToolError):
        TOOL.parse({"anything": 1})
