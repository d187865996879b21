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


# --- libraries: users' own sets of files, shared with their groups and named colleagues ----------
#
# The same property for libraries (connectors.libraries): random owners share random libraries
# with random groups (only the owner's own are accepted) and named users, then people join and
# leave groups, accounts are disabled and sharing changes, through the real services. Each user
# then searches, opens documents, reads an answer whose citations name every library document,
# in their own conversation or in one shared with them (page and JSON API), lists libraries and
# pins them over the API. Nothing of a library ever reaches someone it is not shared with.

LIBRARIES = 3
named_users = st.frozensets(st.sampled_from(USERS), max_size=3)
#: Mostly the owner's own groups (what the service accepts); now and then any group (refused).
any_group = st.sampled_from([False, False, False, True])
library_spec = st.fixed_dictionaries(
    {"owner": st.sampled_from(USERS), "groups": group_sets, "any_group": any_group, "users": named_users}
)
library_change = st.one_of(
    st.tuples(st.just("join"), st.sampled_from(USERS), st.sampled_from(GROUPS)),
    st.tuples(st.just("leave"), st.sampled_from(USERS), st.sampled_from(GROUPS)),
    st.tuples(st.just("deactivate"), st.sampled_from(USERS)),
    st.tuples(st.just("share"), st.integers(0, LIBRARIES - 1), group_sets, any_group, named_users),
)
library_world = st.fixed_dictionaries(
    {
        "members": st.fixed_dictionaries({u: group_sets for u in USERS}),
        "libraries": st.lists(library_spec, min_size=LIBRARIES, max_size=LIBRARIES),
        "documents": st.lists(st.integers(0, LIBRARIES - 1), min_size=1, max_size=6),  # each one's library
        "changes": st.lists(library_change, max_size=4),
        "asker": st.sampled_from(USERS),  # whose answer cites every document; shared with everyone by name
        "queries": st.lists(st.integers(0, 5), min_size=1, max_size=2),
    }
)


class LibraryModel:
    """Who may read a library, stated independently: its owner, the colleagues it is shared with
    by name, and the members of the groups it is shared with (which were the owner's when shared),
    each while their account is active."""

    def __init__(self, spec):
        self.members = {u: set(g) for u, g in spec["members"].items()}
        self.active = {u: True for u in USERS}
        self.libraries = [{"owner": s["owner"], "groups": set(), "users": set()} for s in spec["libraries"]]
        self.documents = spec["documents"]

    def groups_asked(self, index: int, groups, any_group: bool) -> set:
        """The groups a share names: any of them, or only those of the owner's among them."""
        return set(groups) if any_group else set(groups) & self.members[self.libraries[index]["owner"]]

    def share_refused(self, index: int, groups, users) -> bool:
        library = self.libraries[index]
        owner = library["owner"]
        # groups: the owner's own, or ones the library is shared with already (kept, never widened)
        foreign = set(groups) - self.members[owner] - library["groups"]
        return bool(foreign) or any(not self.active[u] for u in set(users) - {owner})

    def share(self, index: int, groups, users) -> None:
        library = self.libraries[index]
        library["groups"], library["users"] = set(groups), set(users) - {library["owner"]}

    def library_visible(self, user: str, index: int) -> bool:
        library = self.libraries[index]
        return self.active[user] and (
            user == library["owner"] or user in library["users"] or bool(self.members[user] & library["groups"])
        )

    def visible(self, user: str, document: int) -> bool:
        return self.library_visible(user, self.documents[document])


def _library_share(library: Connector, groups, users) -> bool:
    """Share through the service; False if it refused (and then nothing changed)."""
    from connectors.libraries import LibraryInvalid, library_share_set

    try:
        with transaction.atomic():
            library_share_set(library=library, group_names=sorted(groups), usernames=sorted(users))
    except LibraryInvalid:
        return False
    return True


def _build_libraries(spec, model: LibraryModel, monkeypatch, tmp_path):
    from assistant.accounts.tokens import api_token_create
    from assistant.chat.models import Conversation, ConversationShare, Message
    from assistant.rag.citations import citation_record, render_html
    from assistant.rag.retrieval import Passage
    from connectors.libraries import library_create

    monkeypatch.setattr(django_settings, "UPLOAD_ROOT", tmp_path / "uploads")
    groups = {name: Group.objects.create(name=name) for name in GROUPS}
    users, tokens = {}, {}
    for name in USERS:
        user = User.objects.create(username=name)
        user.groups.set([groups[g] for g in spec["members"][name]])
        users[name] = user
        tokens[name] = api_token_create(user=user, name="property")[1]
    libraries = []
    for index, lspec in enumerate(spec["libraries"]):
        library = library_create(owner=users[lspec["owner"]], name=f"Shelf{index}")
        asked = model.groups_asked(index, lspec["groups"], lspec["any_group"])
        refused = model.share_refused(index, asked, lspec["users"])
        assert _library_share(library, asked, lspec["users"]) is not refused
        if not refused:
            model.share(index, asked, lspec["users"])
        libraries.append(library)
    run = SyncRun.objects.create(connector=libraries[0], status=SyncRun.Status.RUNNING)
    documents = []
    for index, library_index in enumerate(spec["documents"]):
        text = f"Secret{index} {COMMON_WORD} report number {index} for the team, codename token{index}."
        documents.append(Document.objects.create(
            connector=libraries[library_index], external_id=f"doc{index}.md", title=f"Title{index}", text=text,
            location=f"doc{index}.md", content_hash=hashlib.sha256(text.encode()).hexdigest(), pending_run=run,
        ))
    from connectors.services import connector_acl_apply

    for library in libraries:  # the library's sharing reaches its documents, as after a sync
        connector_acl_apply(connector=library)
    monkeypatch.setattr("connectors.sync.get_embedder", lambda: BagOfWordsEmbedder())
    assert index_documents_execute(run.id, [d.id for d in documents]) == len(documents)

    # An answer of the asker citing every document, shared by name with everyone else.
    passages = [
        Passage(n=i + 1, chunk_id=d.chunks.first().id, document_id=str(d.id), title=d.title, location=d.location,
                url="", connector=d.connector.name, text=d.text, start_char=0, end_char=len(d.text))
        for i, d in enumerate(documents)
    ]
    content = " ".join(f"Point {p.n} [{p.n}]." for p in passages)
    asker = users[spec["asker"]]
    conversation = Conversation.objects.create(user=asker, title="Shelves")
    question = Message.objects.create(conversation=conversation, role="user", content="What is on the shelves?")
    answer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content=content, status=Message.Status.COMPLETE,
        rendered_html=render_html(content, {p.n: p for p in passages}),
        citations=[citation_record(p, inferred=False, answer=content) for p in passages],
    )
    conversation.active_leaf = answer
    conversation.save(update_fields=["active_leaf"])
    for name, user in users.items():
        if user != asker:
            ConversationShare.objects.create(conversation=conversation, user=user, created_by=asker)
    own = {name: Conversation.objects.create(user=user, title="Pins") for name, user in users.items()}
    return users, tokens, libraries, documents, conversation, own


def _leaks(body: str, model: LibraryModel, name: str, documents, libraries) -> list[str]:
    """What of a library or document `name` may not see appears in a response body."""
    found = []
    for index, document in enumerate(documents):
        if not model.visible(name, index):
            found += [s for s in (f"Title{index}", f"Secret{index} ", str(document.id)) if s in body]
    for index, library in enumerate(libraries):
        if not model.library_visible(name, index):
            found += [s for s in (f"Shelf{index}", str(library.id)) if s in body]
    return found


def _check_libraries(model: LibraryModel, built, queries, client: Client, *, views: bool = False):
    import json

    users, tokens, libraries, documents, conversation, own = built
    id_to_index = {str(d.id): i for i, d in enumerate(documents)}
    embedder = BagOfWordsEmbedder()
    for name, user in users.items():
        user.refresh_from_db()
        allowed = {i for i in range(len(documents)) if model.visible(name, i)}
        groups = acl_groups_of(user)
        every = retrieve(embedding=None, groups=groups, query=COMMON_WORD, k=50, mode="fulltext", material_tokens=10000)
        assert {id_to_index[p.document_id] for p in every} == allowed, f"{name}: wrong set of library documents"
        for index in queries:
            question = f"codename token{index} {COMMON_WORD}"
            for p in retrieve(embedding=embedder.embed([question])[0], groups=groups, query=question, k=8,
                              material_tokens=4000):
                assert id_to_index[p.document_id] in allowed, f"{name} received library document {p.document_id}"
        if not views:
            continue
        headers = {"HTTP_AUTHORIZATION": f"Bearer {tokens[name]}"}
        if not user.is_active:  # disabled: tokens revoked, sessions refused
            assert client.get("/api/v1/libraries", **headers).status_code == 401
            continue
        # the APIs: libraries listed, pins accepted only for readable libraries, the cited answer
        listed = client.get("/api/v1/libraries", **headers)
        expected = {str(lib.id) for i, lib in enumerate(libraries) if model.library_visible(name, i)}
        assert {lib["id"] for lib in listed.json()["data"]} == expected, name
        bodies = [listed.content.decode()]
        for index, library in enumerate(libraries):
            pinned = client.put(f"/api/v1/conversations/{own[name].id}/libraries",
                                json.dumps({"libraries": [str(library.id)]}), content_type="application/json",
                                **headers)
            assert pinned.status_code == (200 if model.library_visible(name, index) else 400), (name, index)
            bodies.append(pinned.content.decode())
        client.force_login(user)
        if conversation.user_id == user.pk:
            api = client.get(f"/api/v1/conversations/{conversation.id}", **headers)
            cited = {id_to_index[c["document_id"]] for c in api.json()["messages"][1]["citations"]}
            page = client.get(reverse("chat:conversation", args=[conversation.id]))
        else:
            api = client.get(f"/api/v1/shared/{conversation.id}", **headers)
            cited = {id_to_index[c["document_id"]] for c in api.json()["messages"][1]["citations"] if c["available"]}
            page = client.get(reverse("chat:shared_conversation", args=[conversation.id]))
        assert api.status_code == 200 and page.status_code == 200
        assert cited == allowed, (name, cited, allowed)
        bodies += [api.content.decode(), page.content.decode()]
        for index, document in enumerate(documents):
            status = client.get(reverse("chat:document", args=[document.id])).status_code
            assert status == (200 if index in allowed else 404), (name, index, status)
        bodies.append(client.get(reverse("libraries:list")).content.decode())
        client.logout()
        for body in bodies:
            assert not _leaks(body, model, name, documents, libraries), (name, _leaks(body, model, name, documents,
                                                                                      libraries))


def apply_library_change(step, model: LibraryModel, built) -> None:
    users, _tokens, libraries = built[0], built[1], built[2]
    kind = step[0]
    if kind in ("join", "leave"):
        _, name, group = step
        group_row = Group.objects.get(name=group)
        if kind == "join":
            users[name].groups.add(group_row)
            model.members[name].add(group)
        else:
            users[name].groups.remove(group_row)
            model.members[name].discard(group)
    elif kind == "deactivate":
        users[step[1]].is_active = False
        users[step[1]].save(update_fields=["is_active"])
        model.active[step[1]] = False
    elif kind == "share":
        _, index, groups, any_group, named = step
        library = Connector.objects.get(id=libraries[index].id)
        asked = model.groups_asked(index, groups, any_group)
        refused = model.share_refused(index, asked, named)
        assert _library_share(library, asked, named) is not refused, step
        if not refused:
            model.share(index, asked, named)


#: 15 in the suite (each example makes some forty requests, pages and API); ACL_PROPERTY_EXAMPLES as above.
LIBRARY_EXAMPLES = int(os.environ.get("ACL_PROPERTY_EXAMPLES") or 15)


@pytest.mark.django_db
@hsettings(
    max_examples=LIBRARY_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=library_world)
def test_no_library_ever_reaches_anyone_it_is_not_shared_with(spec, monkeypatch, tmp_path):
    client = Client()
    with transaction.atomic():
        model = LibraryModel(spec)
        built = _build_libraries(spec, model, monkeypatch, tmp_path)
        _check_libraries(model, built, spec["queries"], client)
        for step in spec["changes"]:
            apply_library_change(step, model, built)
            _check_libraries(model, built, spec["queries"], client)
        _check_libraries(model, built, spec["queries"], client, views=True)
        transaction.set_rollback(True)
