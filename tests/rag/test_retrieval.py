"""Retrieval honours ACLs inside the query: an outsider never receives a restricted chunk."""

from __future__ import annotations

import pytest

from assistant.rag.retrieval import embed_query, retrieve
from connectors.models import Connector, SyncRun
from connectors.selectors import acl_groups_of
from connectors.sync import sync_run_execute


@pytest.fixture
def indexed(db, tmp_path, engineering):
    public_dir = tmp_path / "public"
    secret_dir = tmp_path / "secret"
    public_dir.mkdir()
    secret_dir.mkdir()
    (public_dir / "canteen.md").write_text("# Canteen\n\nThe canteen serves lunch from noon to 2 pm.\n")
    (secret_dir / "salaries.md").write_text(
        "# Salary bands\n\nThe salary band for a senior engineer is 95,000 to 120,000 euros.\n"
    )
    public = Connector.objects.create(name="Public", kind="folder", config={"path": str(public_dir)}, is_public=True)
    secret = Connector.objects.create(name="Engineering", kind="folder", config={"path": str(secret_dir)})
    secret.groups.add(engineering)
    for connector in (public, secret):
        run = SyncRun.objects.create(connector=connector)
        sync_run_execute(run.id)
    return public, secret


def titles_for(user, question: str) -> list[str]:
    passages = retrieve(embedding=embed_query(question), query=question, groups=acl_groups_of(user), k=5)
    return [p.title for p in passages]


def test_teammate_in_the_group_finds_the_restricted_passage(indexed, teammate):
    assert titles_for(teammate, "What is the salary band of a senior engineer?")[0] == "Salary bands"


def test_it_never_gives_an_outsider_a_restricted_passage(indexed, outsider):
    titles = titles_for(outsider, "What is the salary band of a senior engineer?")
    assert "Salary bands" not in titles
    assert titles == ["Canteen"]


def test_a_user_without_groups_sees_only_public_documents(indexed, django_user_model):
    loner = django_user_model.objects.create_user("loner", password="x-pass-123456")
    assert titles_for(loner, "salary band") == ["Canteen"]


def test_removing_a_user_from_the_group_takes_effect_on_the_next_query(indexed, teammate, engineering):
    assert "Salary bands" in titles_for(teammate, "salary band")
    teammate.groups.remove(engineering)
    assert "Salary bands" not in titles_for(teammate, "salary band")
