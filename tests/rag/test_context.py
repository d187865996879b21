"""Long context: budgets, whole documents or neighbour windows, trimmed history, precise citations."""

from __future__ import annotations

import pytest

from assistant.rag.citations import finalize_answer
from assistant.rag.context import context_window, material_cap, plan_budget, whole_document_cap
from assistant.rag.retrieval import embed_query, retrieve
from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute

LONG_SECTIONS = [
    f"## Section {i}\n\n" + " ".join(f"Paragraph {i} sentence {j} talks about topic {i} in depth." for j in range(30))
    for i in range(12)
]


@pytest.fixture
def library(db, tmp_path, settings):
    settings.CHUNK_TOKENS = 120
    settings.CHUNK_OVERLAP_TOKENS = 0
    root = tmp_path / "lib"
    root.mkdir()
    (root / "short.md").write_text(
        "# Parking\n\nVisitors park in lot C.\n\nThe lot C barrier opens with code 5521.\n\n"
        "Bicycles go in the courtyard racks."
    )
    (root / "manual.md").write_text("# Robot manual\n\n" + "\n\n".join(LONG_SECTIONS) +
                                    "\n\n## Calibration\n\nCalibrate the Atlas arm with torque wrench TW-88 every month.")
    connector = Connector.objects.create(name="Lib", kind="folder", config={"path": str(root)}, is_public=True)
    sync_run_execute(SyncRun.objects.create(connector=connector).id)
    return connector


def test_a_small_document_is_given_whole(library, settings):
    settings.RAG_WHOLE_DOCUMENT_TOKENS = 800
    question = "What is the barrier code of lot C?"
    passages = retrieve(embedding=embed_query(question), query=question, groups=[], k=1, material_tokens=1500)
    assert passages[0].title == "Parking"
    assert "Visitors park in lot C" in passages[0].text and "Bicycles go in the courtyard" in passages[0].text


def test_a_large_document_gives_the_hit_and_its_neighbours_in_order(library, settings):
    settings.RAG_NEIGHBOUR_CHUNKS = 1
    question = "Which torque wrench calibrates the Atlas arm?"
    passages = retrieve(embedding=embed_query(question), query=question, groups=[], k=1, material_tokens=600)
    [block] = [p for p in passages if p.title == "Robot manual"]
    assert "TW-88" in block.text
    assert len(block.segments) >= 2  # the hit plus at least its neighbour before it
    ordinals = [s.start for s in block.segments]
    assert ordinals == sorted(ordinals)
    assert block.text.startswith(block.text[: 10]) and "Section 0" not in block.text  # not the whole manual


def test_material_never_exceeds_the_budget(library):
    question = "topic 5 in depth"
    for budget in (150, 400, 1000):
        passages = retrieve(embedding=embed_query(question), query=question, groups=[], k=5, material_tokens=budget)
        from inference.tokens import approx_token_count

        assert sum(approx_token_count(p.text) for p in passages) <= budget


def test_long_history_is_trimmed_oldest_first(settings):
    settings.RAG_HISTORY_SHARE = 0.1
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "word " * 200}
               for i in range(20)]
    budget, kept = plan_budget(window=8192, system_prompt="rules", question="q?", history=history)
    assert 0 < len(kept) < len(history)
    assert kept[-1] == history[-1]  # the latest turns stay
    assert budget.history <= int((8192 - budget.answer - budget.fixed) * 0.1)
    assert budget.material <= material_cap(8192)


@pytest.mark.parametrize("window, material", [(8192, 4096), (32768, 16384), (131072, 65536)])
def test_the_material_budget_grows_with_the_models_window(settings, window, material):
    """Unset, the budget is a share of the window: a 32k GPU model reads 16k tokens of documents."""
    settings.RAG_CONTEXT_TOKENS = None
    settings.RAG_CONTEXT_SHARE = 0.5
    budget, _ = plan_budget(window=window, system_prompt="rules", question="q?", history=[], answer_tokens=512)
    assert budget.material == material
    assert whole_document_cap(budget.material) == int(material * 0.8)


def test_a_set_budget_wins_over_the_window(settings):
    settings.RAG_CONTEXT_TOKENS = 1000  # what make run sets for the CPU model
    budget, _ = plan_budget(window=32768, system_prompt="rules", question="q?", history=[])
    assert budget.material == 1000


def test_the_window_comes_from_the_model_server_when_it_reports_one(settings):
    class Server:
        def list_models(self):
            return [{"id": settings.LLM_MODEL, "max_model_len": 32768}]

    settings.LLM_BASE_URL = "http://reports-window.invalid/v1"
    assert context_window(Server()) == 32768
    settings.LLM_BASE_URL = "http://no-window.invalid/v1"

    class Silent:
        def list_models(self):
            return [{"id": settings.LLM_MODEL}]

    assert context_window(Silent()) == settings.LLM_CONTEXT_LENGTH


def test_a_citation_points_at_the_chunk_the_sentence_draws_on(library, settings):
    settings.RAG_WHOLE_DOCUMENT_TOKENS = 50_000
    question = "How is the Atlas arm calibrated?"
    passages = retrieve(embedding=embed_query(question), query=question, groups=[], k=1, material_tokens=50_000)
    block = passages[0]
    assert block.title == "Robot manual" and len(block.segments) > 3
    _, citations = finalize_answer("Calibrate the Atlas arm with torque wrench TW-88 every month [1].", passages)
    [citation] = citations
    assert "TW-88" in citation["quote"]
    assert citation["end"] - citation["start"] < len(block.text)
    assert f"chunk={citation['chunk_ids'][0]}" in citation["document_url"]
