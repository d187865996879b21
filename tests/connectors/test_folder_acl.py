"""Folder sub-folders mapped to groups, upload connectors on their default ACL, and ACL
changes that take effect on the next query without re-embedding anything."""

from __future__ import annotations

import hashlib
import math
import re

import pytest
from django.contrib.auth.models import Group

from connectors import audit
from connectors.models import AuditEvent, Chunk, Connector, Document, SyncRun
from connectors.selectors import documents_visible
from connectors.services import ConnectorInvalid, connector_save
from connectors.sync import sync_run_execute


class CountingEmbedder:
    """Small deterministic vectors (no model needed) that count what is embedded."""

    def __init__(self):
        self.texts = 0

    def embed(self, texts):
        self.texts += len(texts)
        vectors = []
        for text in texts:
            vector = [0.0] * 384
            for word in re.findall(r"\w+", text.lower()):
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % 384] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


@pytest.fixture
def embedder(monkeypatch):
    counter = CountingEmbedder()
    monkeypatch.setattr("connectors.sync.get_embedder", lambda: counter)
    return counter


@pytest.fixture
def share(tmp_path):
    root = tmp_path / "share"
    (root / "hr" / "payroll").mkdir(parents=True)
    (root / "engineering").mkdir()
    (root / "welcome.md").write_text("# Welcome\n\nThe canteen opens at noon.\n")
    (root / "hr" / "contract.md").write_text("# Contract template\n\nNotice period is three months.\n")
    (root / "hr" / "payroll" / "salaries.md").write_text("# Salaries\n\nThe CEO earns a lot.\n")
    (root / "engineering" / "atlas.md").write_text("# Atlas\n\nAtlas ships in May.\n")
    return root


@pytest.fixture
def hr(db):
    return Group.objects.create(name="hr")


@pytest.fixture
def payroll(db):
    return Group.objects.create(name="payroll")


def sync(connector: Connector) -> SyncRun:
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    return run


def acl(external_id: str) -> tuple[bool, list[str]]:
    document = Document.objects.get(external_id=external_id)
    chunk_acls = {(c.acl_public, tuple(c.acl_groups)) for c in Chunk.objects.filter(document=document)}
    assert chunk_acls == {(document.acl_public, tuple(document.acl_groups))}, "chunks must carry the document's ACL"
    return document.acl_public, document.acl_groups


def visible_ids(user) -> set[str]:
    return set(documents_visible(user=user).values_list("external_id", flat=True))


def save(connector, *, mapping, groups, is_public=False, actor=None):
    return connector_save(
        connector=connector, name=connector.name, kind="folder",
        config={"path": connector.config["path"], "folder_groups": mapping}, groups=groups, is_public=is_public,
        actor=actor,
    )


def test_sub_folders_are_visible_only_to_their_groups(share, engineering, hr, payroll, owner, outsider, embedder):
    connector = connector_save(
        name="Share", kind="folder", groups=[engineering],
        config={"path": str(share), "folder_groups": {"hr": ["hr"], "hr/payroll": ["payroll"]}},
    )
    assert sync(connector).status == SyncRun.Status.SUCCEEDED
    assert acl("welcome.md") == (False, ["engineering"])  # not mapped: the connector's ACL
    assert acl("engineering/atlas.md") == (False, ["engineering"])
    assert acl("hr/contract.md") == (False, ["hr"])
    assert acl("hr/payroll/salaries.md") == (False, ["payroll"])  # the deepest mapped folder wins
    assert not Document.objects.filter(acl_from_source=True).exists()
    outsider.groups.add(hr)
    assert visible_ids(owner) == {"welcome.md", "engineering/atlas.md"}
    assert visible_ids(outsider) == {"hr/contract.md"}


def test_a_mapping_change_applies_at_once_without_reembedding(
    share, engineering, hr, payroll, outsider, staff, embedder
):
    connector = connector_save(
        name="Share", kind="folder", groups=[engineering], config={"path": str(share), "folder_groups": {"hr": ["hr"]}}
    )
    sync(connector)
    outsider.groups.add(hr)
    assert "hr/payroll/salaries.md" in visible_ids(outsider)
    embedded, chunk_ids = embedder.texts, set(Chunk.objects.values_list("id", flat=True))

    save(connector, mapping={"hr": ["hr"], "hr/payroll": ["payroll"]}, groups=[engineering], actor=staff)
    assert visible_ids(outsider) == {"hr/contract.md"}  # the next query already obeys
    assert acl("hr/payroll/salaries.md") == (False, ["payroll"])
    assert embedder.texts == embedded and set(Chunk.objects.values_list("id", flat=True)) == chunk_ids
    change = AuditEvent.objects.get(action=audit.CONNECTOR_CHANGED)
    assert change.details["config"]["folder_groups"]["to"] == {"hr": ["hr"], "hr/payroll": ["payroll"]}

    # removing the mapping hands the files back to the connector's ACL
    save(connector, mapping={}, groups=[engineering], is_public=True)
    assert acl("hr/contract.md") == (True, ["engineering"])
    # a later sync (files unchanged, not re-read) keeps what the settings say
    assert sync(connector).unchanged == 4
    assert acl("hr/contract.md") == (True, ["engineering"])
    assert embedder.texts == embedded


def test_a_connector_acl_change_reaches_unmapped_files_only(share, engineering, sales, hr, embedder):
    connector = connector_save(
        name="Share", kind="folder", groups=[engineering], config={"path": str(share), "folder_groups": {"hr": ["hr"]}}
    )
    sync(connector)
    save(connector, mapping={"hr": ["hr"]}, groups=[sales])
    assert acl("welcome.md") == (False, ["sales"])
    assert acl("hr/contract.md") == (False, ["hr"])


@pytest.mark.parametrize(
    "mapping,complaint",
    [({"../etc": ["hr"]}, "not a sub-folder path"), ({"": ["hr"]}, "not a sub-folder path"),
     ({"hr": ["x" * 151]}, "longer than 150"), ({"hr": "hr"}, "valid list")],
)
def test_a_bad_mapping_is_refused_with_a_clear_reason(share, db, mapping, complaint):
    with pytest.raises(ConnectorInvalid) as caught:
        connector_save(name="Share", kind="folder", config={"path": str(share), "folder_groups": mapping})
    assert complaint in str(caught.value)


def test_uploads_take_the_connectors_acl_and_follow_its_changes(settings, tmp_path, engineering, sales, owner,
                                                                   outsider, embedder):
    from connectors import upload_storage

    settings.UPLOAD_ROOT = tmp_path / "uploads"
    target = Connector(kind="upload")
    connector = connector_save(connector=target, name="Uploads", kind="upload",
                               config={"path": str(upload_storage.upload_dir_for(target))}, groups=[engineering])
    folder = upload_storage.upload_dir_ensure(connector)
    (folder / "notes.md").write_text("# Notes\n\nThe offsite is in June.\n")
    assert sync(connector).added == 1
    assert acl("notes.md") == (False, ["engineering"])
    assert visible_ids(owner) == {"notes.md"} and visible_ids(outsider) == set()
    embedded = embedder.texts
    connector_save(connector=connector, name="Uploads", kind="upload", config=connector.config, groups=[sales])
    assert visible_ids(owner) == set() and visible_ids(outsider) == {"notes.md"}
    assert embedder.texts == embedded


def test_a_rows_own_acl_change_applies_at_the_next_sync_without_reembedding(db, monkeypatch, owner, outsider,
                                                                           embedder):
    """A database row whose groups column changed but whose text did not: ACL updated in place."""
    from connectors.sources.base import Source, SourceConfig, SourceDocument
    from connectors.sources.registry import SOURCES

    rows = {"acct-1": ("Account Acme: renewal in March.", ("engineering",))}

    class RowsSource(Source):
        kind = "rows-test"
        label = "Rows"

        class Config(SourceConfig):
            pass

        def check(self):
            return "ok"

        def list_ids(self):
            return set(rows)

        def iter_documents(self, since=None, previous=None):
            for external_id, (text, groups) in rows.items():
                yield SourceDocument(external_id=external_id, title=external_id, text=text, acl_groups=groups,
                                     acl_public=False)

    monkeypatch.setitem(SOURCES, "rows-test", RowsSource)
    connector = Connector.objects.create(name="CRM", kind="rows-test", config={})
    sync(connector)
    assert visible_ids(owner) == {"acct-1"} and visible_ids(outsider) == set()
    embedded = embedder.texts
    rows["acct-1"] = ("Account Acme: renewal in March.", ("sales",))
    run = sync(connector)
    assert run.unchanged == 1 and embedder.texts == embedded
    assert acl("acct-1") == (False, ["sales"])
    assert visible_ids(owner) == set() and visible_ids(outsider) == {"acct-1"}
