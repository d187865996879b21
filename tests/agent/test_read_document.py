"""read_document: a whole document or one part of it, under the acting user's ACL."""

from __future__ import annotations

import uuid

import pytest

from assistant.agent.registry import ToolError, tool_named
from connectors.models import Document
from tests.agent.conftest import context_for

TOOL = tool_named("read_document")


def read(context, **arguments):
    return TOOL.run(context, TOOL.parse(arguments))


def test_teammate_reads_a_restricted_document_whole_and_can_cite_it(knowledge, teammate):
    document = Document.objects.get(title="Salary bands")
    context = context_for(teammate)
    result = read(context, document=str(document.id))
    assert result.content.startswith(f"[1] Salary bands (Engineering, document {document.id})\n")
    assert document.text.strip() in result.content
    assert result.summary == "Read “Salary bands”" and not result.truncated
    [passage] = context.book.passages
    assert passage.n == 1 and passage.text == document.text and passage.segments
    assert result.sources == [
        {"title": "Salary bands", "url": document.url, "connector": "Engineering",
         "document_id": str(document.id), "kind": "document"}
    ]


def test_a_denied_document_gives_the_same_error_as_one_that_does_not_exist(knowledge, outsider):
    denied = Document.objects.get(title="Salary bands")
    with pytest.raises(ToolError) as hidden:
        read(context_for(outsider), document=str(denied.id))
    missing_id = uuid.uuid4()
    with pytest.raises(ToolError) as missing:
        read(context_for(outsider), document=str(missing_id))
    assert str(hidden.value).replace(str(denied.id), "X") == str(missing.value).replace(str(missing_id), "X")
    assert "Salary" not in str(hidden.value)


def test_outside_the_assistants_connectors_a_document_is_unknown(knowledge, teammate):
    public, _secret = knowledge
    with pytest.raises(ToolError):
        read(context_for(teammate, connectors=[public]), document=str(Document.objects.get(title="Salary bands").id))


def test_a_long_document_comes_in_parts_that_cover_it(knowledge, teammate):
    public, _secret = knowledge
    paragraphs = [f"Paragraph {i}: the expense rule number {i} applies to trips abroad." for i in range(60)]
    text = "\n\n".join(paragraphs)
    document = Document.objects.create(
        connector=public, external_id="long.md", title="Expense rules", text=text, content_hash="x",
        acl_public=True,
    )
    context = context_for(teammate, result_tokens=200)
    first = read(context, document=str(document.id))
    assert "part 1 of" in first.content and "part=2" in first.content and first.truncated
    count = int(first.content.split("part 1 of ", 1)[1].split()[0].rstrip(")\n"))
    assert count > 2
    texts = [context.book.passages[0].text]
    for part in range(2, count + 1):
        result = read(context, document=str(document.id), part=part)
        assert f"part {part} of {count}" in result.content
        texts.append(context.book.passages[-1].text)
    assert "part=" not in result.content and not result.truncated
    assert " ".join(" ".join(texts).split()) == " ".join(text.split())  # nothing lost, nothing repeated
    assert [p.n for p in context.book.passages] == list(range(1, count + 1))
    with pytest.raises(ToolError) as beyond:
        read(context, document=str(document.id), part=count + 1)
    assert f"from 1 to {count}" in str(beyond.value)


@pytest.mark.parametrize("arguments", [{"document": "the travel policy"}, {}, {"document": str(uuid.uuid4()), "part": 0}])
def test_bad_arguments_say_what_to_fix(arguments):
    with pytest.raises(ToolError) as error:
        TOOL.parse(arguments)
    assert "document" in str(error.value) or "part" in str(error.value)
