"""Property: no user ever receives a chunk, citation or title they may not see.

Hypothesis generates users, groups and their memberships, connectors with ACLs (public,
groups, a folder's sub-folders mapped to groups), documents (some with their own ACL from
the source, like a groups column), then a sequence of changes: users joining and leaving
groups, accounts deactivated, connector ACLs and folder mappings changed through the real
service. After setup and after every change, each user runs real hybrid queries (vector +
full text, RRF) through assistant.rag.retrieval.retrieve over chunks indexed by the real
index stage, and opens documents through the real view. Expected visibility comes from an
independent model of the rules, written here in plain Python.

Embeddings are small deterministic bag-of-words vectors, so the test needs no model and
runs fast; everything else (SQL, ACL copies onto chunks, context widening) is the product's.
"""

from __future__ import annotations

import hashlib
import math
import os
import re

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from assistant.rag.retrieval import retrieve
from connectors.access import document_access_explain
from connectors.models import Connector, Document, SyncRun
from connectors.selectors import acl_groups_of
from connectors.services import connector_save
from connectors.sync import index_documents_execute

GROUPS = ["g0", "g1", "g2", "g3"]
USERS = ["u0", "u1", "u2", "u3"]
FOLDERS = ["", "hr", "hr/payroll", "eng", "eng/secret"]
DIMENSIONS = 384
COMMON_WORD = "quarterly"


class BagOfWordsEmbedder:
    """Deterministic embeddings: each word hashed into a dimension, L2-normalised."""

    def embed(self, texts):
        vectors = []
        for text in texts:
            vector = [0.0] * DIMENSIONS
            for word in re.findall(r"\w+", text.lower()):
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


# --- the generated world -------------------------------------------------------------------------

group_sets = st.frozensets(st.sampled_from(GROUPS), max_size=3)
connector_spec = st.fixed_dictionaries({"public": st.booleans(), "groups": group_sets})
folder_mapping = st.dictionaries(
    st.sampled_from(FOLDERS[1:]), st.lists(st.sampled_from(GROUPS), max_size=2), max_size=3
)
document_spec = st.fixed_dictionaries(
    {
        "connector": st.integers(0, 2),
        "folder": st.sampled_from(FOLDERS),
        # None: the connector's ACL (or its folder mapping); else the item's own ACL from the source
        "own_acl": st.none() | st.fixed_dictionaries({"public": st.booleans(), "groups": group_sets}),
    }
)
change = st.one_of(
    st.tuples(st.just("join"), st.sampled_from(USERS), st.sampled_from(GROUPS)),
    st.tuples(st.just("leave"), st.sampled_from(USERS), st.sampled_from(GROUPS)),
    st.tuples(st.just("deactivate"), st.sampled_from(USERS)),
    st.tuples(st.just("connector_acl"), st.integers(0, 2), connector_spec),
    st.tuples(st.just("folder_mapping"), folder_mapping),
)
world = st.fixed_dictionaries(
    {
        "members": st.fixed_dictionaries({u: group_sets for u in USERS}),
        "connectors": st.lists(connector_spec, min_size=3, max_size=3),
        "mapping": folder_mapping,
        "documents": st.lists(document_spec, min_size=1, max_size=8),
        "changes": st.lists(change, max_size=5),
        "queries": st.lists(st.integers(0, 7), min_size=1, max_size=2),
    }
)


class Model:
    """The rules, stated independently of the product's code."""

    def __init__(self, spec):
        self.members = {u: set(g) for u, g in spec["members"].items()}
        self.active = {u: True for u in USERS}
        self.connectors = [dict(c, groups=set(c["groups"])) for c in spec["connectors"]]
        self.mapping = {k: set(v) for k, v in spec["mapping"].items()}
        self.documents = spec["documents"]

    def acl(self, doc) -> tuple[bool, set]:
        if doc["own_acl"] is not None and doc["connector"] != 2:
            return doc["own_acl"]["public"], set(doc["own_acl"]["groups"])
        if doc["connector"] == 2:  # the folder connector: deepest mapped sub-folder wins
            folder = doc["folder"]
            while folder:
                if folder in self.mapping:
                    return False, self.mapping[folder]
                folder = folder.rsplit("/", 1)[0] if "/" in folder else ""
        connector = self.connectors[doc["connector"]]
        return connector["public"], connector["groups"]

    def visible(self, user: str, index: int) -> bool:
        if not self.active[user]:
            return False
        public, groups = self.acl(self.documents[index])
        return public or bool(self.members[user] & groups)


def _save_connector(connector: Connector, spec: dict, *, config: dict | None = None) -> None:
    connector_save(
        connector=connector, name=connector.name, kind=connector.kind, config=config or connector.config,
        is_public=spec["public"], groups=list(Group.objects.filter(name__in=spec["groups"])),
    )


def _build(spec, model: Model, monkeypatch):
    # The connectors' folders are never read (documents are indexed directly); the operator's
    # data roots must still allow them for connector_save to accept the ACL changes.
    monkeypatch.setattr(django_settings, "CONNECTOR_DATA_DIR", [*django_settings.CONNECTOR_DATA_DIR, "/srv"])
    groups = {name: Group.objects.create(name=name) for name in GROUPS}
    users = {}
    for name in USERS:
        user = User.objects.create(username=name)  # no password: hashing would dominate the run time
        user.groups.set([groups[g] for g in spec["members"][name]])
        users[name] = user
    connectors = [
        Connector.objects.create(name="Database", kind="folder", config={"path": "/srv/db-export"}),
        Connector.objects.create(name="Intranet", kind="folder", config={"path": "/srv/intranet"}),
        Connector.objects.create(
            name="Share", kind="folder", config={"path": "/srv/share", "folder_groups": {}}
        ),
    ]
    for connector, cspec in zip(connectors, spec["connectors"], strict=True):
        _save_connector(connector, cspec)
    _save_connector(
        connectors[2], spec["connectors"][2],
        config={"path": "/srv/share", "folder_groups": {k: sorted(v) for k, v in spec["mapping"].items()}},
    )
    documents = []
    run = SyncRun.objects.create(connector=connectors[0], status=SyncRun.Status.RUNNING)
    for index, dspec in enumerate(spec["documents"]):
        connector = connectors[dspec["connector"]]
        own = dspec["own_acl"] if dspec["connector"] != 2 else None
        external_id = f"{dspec['folder']}/doc{index}.md".lstrip("/")
        text = f"Secret{index} {COMMON_WORD} report number {index} for the team, codename token{index}."
        document = Document.objects.create(
            connector=connector, external_id=external_id, title=f"Title{index}", text=text,
            content_hash=hashlib.sha256(text.encode()).hexdigest(),
            acl_public=own["public"] if own else False, acl_groups=sorted(own["groups"]) if own else [],
            acl_from_source=own is not None, pending_run=run,
        )
        documents.append(document)
    # The connector ACL (and folder mapping) reaches documents that inherit it, as after a sync.
    for connector in connectors:
        from connectors.services import connector_acl_apply

        connector_acl_apply(connector=connector)
    monkeypatch.setattr("connectors.sync.get_embedder", lambda: BagOfWordsEmbedder())
    assert index_documents_execute(run.id, [d.id for d in documents]) == len(documents)
    return groups, users, connectors, documents


def _check(model: Model, users, documents, queries, client: Client, *, views: bool = False):
    embedder = BagOfWordsEmbedder()
    id_to_index = {str(d.id): i for i, d in enumerate(documents)}
    titles = {f"Title{i}" for i in range(len(documents))}
    for name, user in users.items():
        user.refresh_from_db()
        allowed = {i for i in range(len(documents)) if model.visible(name, i)}
        if not user.is_active and views:
            # A deactivated account is signed out on its next request: no question reaches retrieval.
            client.force_login(user)
            for document in documents:
                response = client.get(reverse("chat:document", args=[document.id]))
                assert response.status_code == 302 and reverse("login") in response["Location"]
            client.logout()
        if not user.is_active:
            assert acl_groups_of(user) == []
            continue
        groups = acl_groups_of(user)
        for q in queries:
            question = f"codename token{q} {COMMON_WORD}"
            passages = retrieve(
                embedding=embedder.embed([question])[0], groups=groups, query=question, k=8, material_tokens=4000
            )
            for passage in passages:
                index = id_to_index[passage.document_id]
                assert index in allowed, f"{name} received document {index} it may not see"
                assert passage.title in titles and passage.title == f"Title{index}"
                segment_docs = set(
                    Document.objects.filter(chunks__id__in=[s.chunk_id for s in passage.segments])
                    .values_list("id", flat=True)
                )
                assert {str(d) for d in segment_docs} <= {passage.document_id}, "a citation mixes documents"
                for other in set(range(len(documents))) - allowed:
                    assert f"Secret{other} " not in passage.text and f"Title{other}" != passage.title
        # Completeness: full text on the word every document has returns exactly the visible ones.
        every = retrieve(embedding=None, groups=groups, query=COMMON_WORD, k=50, mode="fulltext", material_tokens=10000)
        assert {id_to_index[p.document_id] for p in every} == allowed, f"{name}: wrong set of documents"
        if not views:
            continue
        # The "why can U see D?" answer agrees, and so does the document view (404, never 403).
        for index, document in enumerate(documents):
            fresh = Document.objects.select_related("connector").get(id=document.id)
            assert document_access_explain(user=user, document=fresh).allowed == (index in allowed)
        client.force_login(user)
        for index, document in enumerate(documents):
            status = client.get(reverse("chat:document", args=[document.id])).status_code
            assert status == (200 if index in allowed else 404), (name, index, status)
        client.logout()


def apply_change(step, model: Model, groups, users, connectors) -> None:
    """One generated change, made through the product (and mirrored in the model)."""
    kind = step[0]
    if kind in ("join", "leave"):
        _, name, group = step
        if kind == "join":
            users[name].groups.add(groups[group])
            model.members[name].add(group)
        else:
            users[name].groups.remove(groups[group])
            model.members[name].discard(group)
    elif kind == "deactivate":
        users[step[1]].is_active = False
        users[step[1]].save(update_fields=["is_active"])
        model.active[step[1]] = False
    elif kind == "connector_acl":
        _, index, cspec = step
        connector = Connector.objects.get(id=connectors[index].id)
        _save_connector(connector, cspec)
        model.connectors[index] = dict(cspec, groups=set(cspec["groups"]))
    elif kind == "folder_mapping":
        mapping = step[1]
        connector = Connector.objects.get(id=connectors[2].id)
        current = model.connectors[2]
        _save_connector(
            connector, current,
            config={"path": "/srv/share", "folder_groups": {k: sorted(set(v)) for k, v in mapping.items()}},
        )
        model.mapping = {k: set(v) for k, v in mapping.items()}


#: 30 in the suite; bench/acl_property.py runs thousands (ACL_PROPERTY_EXAMPLES).
EXAMPLES = int(os.environ.get("ACL_PROPERTY_EXAMPLES") or 30)


@pytest.mark.django_db
@hsettings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=world)
def test_no_user_ever_receives_a_chunk_citation_or_title_they_may_not_see(spec, monkeypatch):
    client = Client()
    with transaction.atomic():
        model = Model(spec)
        groups, users, connectors, documents = _build(spec, model, monkeypatch)
        _check(model, users, documents, spec["queries"], client)
        for step in spec["changes"]:
            apply_change(step, model, groups, users, connectors)
            _check(model, users, documents, spec["queries"], client)
        _check(model, users, documents, spec["queries"], client, views=True)
        transaction.set_rollback(True)
