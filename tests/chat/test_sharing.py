"""Sharing a conversation read-only (assistant/chat/sharing.py, share_views.py, shared_view.py).

Personas: the owner (engineering), a teammate (engineering), a named colleague (no group), an
outsider (sales). A viewer sees the answers and only the sources they may open themselves; a
conversation not shared with you is a 404 wherever you ask for it.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from assistant.chat import sharing
from assistant.chat.models import Conversation, ConversationShare, Message
from assistant.rag.citations import finalize_answer
from assistant.rag.sources import sources_record
from connectors.models import AuditEvent
from tests.chat.test_steps_sources_access import indexed, passage_of, step_over

SECRET_TITLE = "Salary bands 2026"
SECRET_TEXT = "Band C engineers earn between 61,000 and 74,000 euros a year. Bonuses are capped at 8 percent."
PUBLIC_TITLE = "Travel policy 2024"
PUBLIC_TEXT = "Trains are booked in second class for trips under four hours."
ANSWER = "Band C engineers earn between 61,000 and 74,000 euros a year [1]. Trains are booked in second class [2]."
UNAVAILABLE = "Source not available to you"


@pytest.fixture
def colleague(db) -> User:
    return User.objects.create_user("colleague", password="colleague-pass-123", first_name="Cleo", last_name="Martin")


def answer_citing_secret_and_public(owner) -> Message:
    """The owner's answer citing an engineering-only document [1] and a public one [2]."""
    secret = indexed(SECRET_TITLE, SECRET_TEXT, groups=["engineering"])
    public = indexed(PUBLIC_TITLE, PUBLIC_TEXT, groups=[], public=True)
    passages = [passage_of(1, secret), passage_of(2, public)]
    rendered, citations = finalize_answer(ANSWER, passages)
    assert [c["n"] for c in citations] == [1, 2]
    conversation = Conversation.objects.create(user=owner, title="Pay and travel")
    question = Message.objects.create(conversation=conversation, role="user", content="Pay and trains?")
    answer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content=ANSWER, rendered_html=rendered,
        citations=citations, sources=sources_record(passages, citations),
        steps=[step_over(secret, 1), step_over(public, 2)], status=Message.Status.COMPLETE,
    )
    conversation.active_leaf = answer
    conversation.save(update_fields=["active_leaf"])
    return answer


@pytest.fixture
def answer(db, owner, engineering) -> Message:
    return answer_citing_secret_and_public(owner)


@pytest.fixture
def conversation(answer) -> Conversation:
    return answer.conversation


def share(conversation, owner, *, usernames=(), groups=()):
    return sharing.conversation_share(conversation=conversation, actor=owner, usernames=list(usernames),
                                      groups=list(groups))


def shared_page(client, user, conversation):
    client.force_login(user)
    return client.get(reverse("chat:shared_conversation", args=[conversation.id]))


# --- the service ---------------------------------------------------------------------------------


def test_a_named_colleague_finds_it_in_shared_with_me(owner, colleague, outsider, conversation):
    [created] = share(conversation, owner, usernames=["colleague"])
    assert created.user == colleague and created.created_by == owner
    [entry] = sharing.conversations_shared_with(user=colleague)
    assert entry.conversation == conversation and entry.owner_name == "owner" and entry.groups == []
    assert sharing.conversation_get_shared(user=colleague, conversation_id=conversation.id) == conversation
    assert sharing.conversations_shared_with(user=outsider) == []
    assert sharing.conversations_shared_with(user=owner) == []  # your own are in the sidebar, not here


def test_several_usernames_in_one_text_and_sharing_twice_keeps_one_share(owner, colleague, outsider, conversation):
    assert len(share(conversation, owner, usernames=["colleague, outsider"])) == 2
    assert share(conversation, owner, usernames=["colleague"]) == []
    assert conversation.shares.count() == 2


def test_a_group_share_reaches_its_members_while_the_owner_is_one(owner, teammate, outsider, engineering, conversation):
    share(conversation, owner, groups=["engineering"])
    [entry] = sharing.conversations_shared_with(user=teammate)
    assert entry.groups == ["engineering"]
    assert sharing.conversations_shared_with(user=outsider) == []
    owner.groups.remove(engineering)  # the owner left the team: what they shared with it lapses
    assert sharing.conversations_shared_with(user=teammate) == []
    with pytest.raises(Conversation.DoesNotExist):
        sharing.conversation_get_shared(user=teammate, conversation_id=conversation.id)


def test_it_refuses_a_group_the_owner_is_not_in(owner, conversation):
    Group.objects.create(name="board")
    for name in ("sales", "board", "no-such-group"):
        with pytest.raises(sharing.ShareRefused) as refused:
            share(conversation, owner, groups=[name])
        assert refused.value.field == "groups"
        assert str(refused.value) == f"You can share only with groups you belong to; “{name}” is not one of yours."
    assert not ConversationShare.objects.exists()


@pytest.mark.parametrize(("usernames", "says"), [
    (["nobody-here"], "No colleague has the username “nobody-here”."),
    (["owner"], "This conversation is already yours: name a colleague."),
    ([], "Name a colleague or pick a group to share with."),
    ([" , "], "Name a colleague or pick a group to share with."),
])
def test_it_refuses_unknown_users_yourself_and_nobody(owner, conversation, usernames, says):
    with pytest.raises(sharing.ShareRefused, match=says):
        share(conversation, owner, usernames=usernames)
    assert not ConversationShare.objects.exists()


def test_an_inactive_account_cannot_be_shared_with(owner, colleague, conversation):
    colleague.is_active = False
    colleague.save()
    with pytest.raises(sharing.ShareRefused, match="No colleague has the username"):
        share(conversation, owner, usernames=["colleague"])


def test_only_the_owner_shares(teammate, colleague, conversation):
    with pytest.raises(sharing.ShareRefused, match="Only the conversation's owner"):
        share(conversation, teammate, usernames=["colleague"])


def test_share_and_revoke_are_audited_without_the_title(owner, colleague, conversation, engineering):
    share(conversation, owner, usernames=["colleague"], groups=["engineering"])
    for s in list(conversation.shares.all()):
        sharing.conversation_share_revoke(share=s, actor=owner)
    events = list(AuditEvent.objects.filter(action__startswith="conversation.").order_by("created_at", "id"))
    assert [(e.action, e.details) for e in events] == [
        ("conversation.shared", {"with": {"user": "colleague"}}),
        ("conversation.shared", {"with": {"group": "engineering"}}),
        ("conversation.unshared", {"with": {"user": "colleague"}}),
        ("conversation.unshared", {"with": {"group": "engineering"}}),
    ]
    assert {e.actor for e in events} == {owner} and {e.target_id for e in events} == {str(conversation.id)}
    assert all("Pay and travel" not in (e.target_label + json.dumps(e.details)) for e in events)
    assert sharing.conversations_shared_with(user=colleague) == []


def test_a_deleted_conversation_is_shared_with_nobody(owner, colleague, conversation):
    share(conversation, owner, usernames=["colleague"])
    Conversation.objects.filter(id=conversation.id).update(deleted_at="2026-12-06T10:00:00Z")
    assert sharing.conversations_shared_with(user=colleague) == []


# --- the owner's endpoints -----------------------------------------------------------------------


def test_the_owner_shares_lists_and_revokes_through_the_api(client, owner, colleague, conversation):
    client.force_login(owner)
    url = reverse("chat:api_shares", args=[conversation.id])
    empty = client.get(url).json()
    assert empty["shares"] == [] and empty["groups"] == ["engineering"]
    assert empty["view_url"] == reverse("chat:shared_conversation", args=[conversation.id])

    added = client.post(url, {"usernames": "colleague", "groups": ["engineering"]}, content_type="application/json")
    assert added.status_code == 201 and added.json()["added"] == 2
    shares = added.json()["shares"]
    assert [(s["kind"], s["name"], s["label"]) for s in shares] == [
        ("user", "colleague", "Cleo Martin"), ("group", "engineering", "engineering")]

    revoked = client.post(shares[0]["revoke_url"])
    assert revoked.status_code == 200 and [s["name"] for s in revoked.json()["shares"]] == ["engineering"]
    assert shared_page(client, colleague, conversation).status_code == 404  # at once


def test_the_api_says_which_field_is_wrong(client, owner, conversation):
    client.force_login(owner)
    url = reverse("chat:api_shares", args=[conversation.id])
    refused = client.post(url, {"groups": ["sales"]}, content_type="application/json")
    assert refused.status_code == 400
    assert refused.json() == {"error": "You can share only with groups you belong to; “sales” is not one of yours.",
                              "param": "groups"}
    wrong_type = client.post(url, {"usernames": 42}, content_type="application/json")
    assert wrong_type.status_code == 400 and wrong_type.json()["param"] == "usernames"
    assert not ConversationShare.objects.exists()


def test_a_form_post_shares_too(client, owner, colleague, conversation):
    client.force_login(owner)
    response = client.post(reverse("chat:api_shares", args=[conversation.id]), {"usernames": ["colleague"]})
    assert response.status_code == 201 and conversation.shares.get().user == colleague


def test_nobody_but_the_owner_reaches_the_share_endpoints(client, owner, teammate, colleague, conversation):
    share(conversation, owner, usernames=["colleague"], groups=["engineering"])
    the_share = conversation.shares.first()
    for user in (teammate, colleague):  # viewers included: they read, they do not manage
        client.force_login(user)
        assert client.get(reverse("chat:api_shares", args=[conversation.id])).status_code == 404
        posted = client.post(reverse("chat:api_shares", args=[conversation.id]), {"usernames": "outsider"},
                             content_type="application/json")
        assert posted.status_code == 404
        assert client.post(reverse("chat:api_share_revoke", args=[the_share.id])).status_code == 404
    assert conversation.shares.count() == 2


# --- the read-only view --------------------------------------------------------------------------


def test_a_stranger_gets_404_everywhere(client, owner, outsider, conversation, answer):
    share(conversation, owner, groups=["engineering"])
    client.force_login(outsider)
    for url in (reverse("chat:shared_conversation", args=[conversation.id]),
                reverse("chat:conversation", args=[conversation.id])):
        assert client.get(url).status_code == 404
    assert "Pay and travel" not in client.get(reverse("chat:shared_list")).content.decode()


def test_the_viewer_sees_a_read_only_page(client, owner, colleague, conversation):
    share(conversation, owner, usernames=["colleague"])
    response = shared_page(client, colleague, conversation)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Pay and travel" in html and "Pay and trains?" in html
    assert "Shared with you by owner" in html and "Read-only" in html
    for control in ('id="composer"', 'id="prompt"', 'id="stop"', "regenerate-button", "edit-question-button",
                    "feedback.js", "retry-button", 'id="share-dialog"'):
        assert control not in html, control
    assert 'class="message-body"><p>Band C engineers' in html  # the stored, sanitised markdown


def test_the_owners_own_link_redirects_a_viewer_to_the_read_only_view(client, owner, colleague, conversation):
    share(conversation, owner, usernames=["colleague"])
    client.force_login(colleague)
    response = client.get(reverse("chat:conversation", args=[conversation.id]))
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:shared_conversation", args=[conversation.id])


def test_a_group_member_opens_it_from_shared_with_me(client, owner, teammate, conversation):
    share(conversation, owner, groups=["engineering"])
    client.force_login(teammate)
    listing = client.get(reverse("chat:shared_list")).content.decode()
    assert reverse("chat:shared_conversation", args=[conversation.id]) in listing
    assert "from owner" in listing and "through engineering" in listing
    html = shared_page(client, teammate, conversation).content.decode()
    # a teammate may open both documents, as the owner does
    assert SECRET_TITLE in html and PUBLIC_TITLE in html and UNAVAILABLE not in html


def test_a_viewer_sees_only_the_citations_they_may_open(client, owner, colleague, conversation, answer):
    share(conversation, owner, usernames=["colleague"])
    html = shared_page(client, colleague, conversation).content.decode()
    secret = answer.sources[0]
    # the public document, as the colleague may open it
    assert PUBLIC_TITLE in html and PUBLIC_TEXT in html
    # the engineering-only one: a marker, with nothing of the source in it
    assert UNAVAILABLE in html
    # (the answer's own words are shared; the passage beyond them is the source's)
    for leak in (SECRET_TITLE, "Bonuses are capped", "/srv/data/", secret["document_id"], secret["url"]):
        assert leak not in html, leak
    assert f'<span class="cite cite-unavailable" data-n="1" title="{UNAVAILABLE}">[1]</span>' in html
    assert 'class="source source-unavailable" data-n="1"' in html
    # steps: no arguments or summaries for a viewer, and the one that read the secret is relabelled
    assert "Using search_knowledge…" in html and "what does" not in html and "Found 1 passage" not in html


def test_a_viewer_follows_the_conversations_later_turns(client, owner, colleague, conversation, answer):
    share(conversation, owner, usernames=["colleague"])
    question = Message.objects.create(conversation=conversation, parent=answer, role="user", content="And taxis?")
    later = Message.objects.create(conversation=conversation, parent=question, role="assistant",
                                   content="Taxis need approval.", rendered_html="<p>Taxis need approval.</p>")
    conversation.active_leaf = later
    conversation.save(update_fields=["active_leaf"])
    html = shared_page(client, colleague, conversation).content.decode()
    assert "And taxis?" in html and "Taxis need approval." in html


def test_an_answer_still_being_written_is_announced_not_shown(client, owner, colleague, conversation, answer):
    share(conversation, owner, usernames=["colleague"])
    question = Message.objects.create(conversation=conversation, parent=answer, role="user", content="Per diem?")
    streaming = Message.objects.create(conversation=conversation, parent=question, role="assistant",
                                       content="Half writ", status=Message.Status.STREAMING)
    conversation.active_leaf = streaming
    conversation.save(update_fields=["active_leaf"])
    html = shared_page(client, colleague, conversation).content.decode()
    assert "This answer is still being written" in html and "Half writ" not in html


def test_a_viewer_cannot_post_into_it(client, owner, colleague, conversation, answer):
    share(conversation, owner, usernames=["colleague"])
    client.force_login(colleague)
    before = Message.objects.count()
    for name, arg, body in (
        ("chat:api_question_submit", conversation.id, {"content": "Me too?"}),
        ("chat:api_answer_regenerate", answer.id, {}),
        ("chat:api_question_edit", answer.parent_id, {"content": "Edited"}),
        ("chat:api_message_feedback", answer.id, {"rating": "up"}),
        ("chat:api_answer_stop", answer.id, {}),
        ("chat:rename", conversation.id, {"title": "Mine now"}),
        ("chat:delete", conversation.id, {}),
    ):
        response = client.post(reverse(name, args=[arg]), body, content_type="application/json")
        assert response.status_code == 404, name
    assert Message.objects.count() == before
    conversation.refresh_from_db()
    assert conversation.title == "Pay and travel" and conversation.deleted_at is None


def test_the_owner_previews_the_read_only_view(client, owner, conversation):
    html = shared_page(client, owner, conversation).content.decode()
    assert "This is what the colleagues you share it with see" in html
    assert SECRET_TITLE in html  # as the owner may see it


def test_the_read_only_view_speaks_german(client, owner, colleague, conversation):
    share(conversation, owner, usernames=["colleague"])
    client.force_login(colleague)
    html = client.get(reverse("chat:shared_conversation", args=[conversation.id]),
                      HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Schreibgeschützt" in html and "Quelle für Sie nicht verfügbar" in html


def test_the_chat_page_offers_sharing_to_the_owner_and_marks_shared_rows(client, owner, colleague, conversation):
    client.force_login(owner)
    url = reverse("chat:conversation", args=[conversation.id])
    html = client.get(url).content.decode()
    assert 'id="share-open"' in html and 'id="share-dialog"' in html and "share-button" in html
    assert reverse("chat:shared_list") in html
    assert f'data-id="{conversation.id}" data-pinned="false" data-shared="false"' in html
    share(conversation, owner, usernames=["colleague"])
    html = client.get(url).content.decode()
    assert f'data-id="{conversation.id}" data-pinned="false" data-shared="true"' in html
