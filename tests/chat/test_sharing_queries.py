"""A shared answer's query result is shown to a viewer only while the VIEWER may query its
connector and every dataset it read, and its CSV download runs again governed as the viewer
(never as the owner who asked). Chinook on the machine's PostgreSQL; `invoices` is for finance.

Personas: the owner (engineering + finance) asked; a finance colleague (engineering + finance)
may query it too; the teammate (engineering, not finance) may not read invoices; the outsider
(sales) may not see the connector at all.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from assistant.chat import sharing
from connectors.models import AuditEvent
from tests.chat.test_query_sources import (  # noqa: F401 - fixtures
    answer, chinook, clean_counters, csv_rows, download, finance_owner,
)
from tests.chat.sql_answers import SALES_BY_COUNTRY

pytestmark = pytest.mark.usefixtures("sample_database_servers")
UNAVAILABLE = "Source not available to you"


@pytest.fixture
def accountant(db, engineering) -> User:
    user = User.objects.create_user("accountant", password="accountant-pass-123")
    user.groups.add(engineering, Group.objects.get_or_create(name="finance")[0])
    return user


def shared_html(client, user, answer) -> str:
    client.force_login(user)
    response = client.get(reverse("chat:shared_conversation", args=[answer.conversation_id]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_viewer_who_may_query_the_data_sees_the_result_and_downloads_it_as_themselves(
    client, answer, finance_owner, accountant
):
    sharing.conversation_share(conversation=answer.conversation, actor=finance_owner, usernames=["accountant"],
                               groups=[])
    html = shared_html(client, accountant, answer)
    query_id = answer.sources[0]["query_id"]
    assert 'class="query-result"' in html and f'id="query-{query_id}"' in html and UNAVAILABLE not in html
    response = download(client, accountant, answer)
    assert response.status_code == 200 and csv_rows(response)[1] == ["USA", "91", "523.06"]
    event = AuditEvent.objects.filter(action="sql.download").get()
    assert event.actor == accountant  # run and recorded as the viewer


def test_a_viewer_who_may_not_read_the_dataset_gets_the_marker_and_no_download(
    client, answer, finance_owner, teammate, outsider
):
    sharing.conversation_share(conversation=answer.conversation, actor=finance_owner, usernames=[],
                               groups=["engineering"])  # reaches the teammate, who is not in finance
    sharing.conversation_share(conversation=answer.conversation, actor=finance_owner, usernames=["outsider"],
                               groups=[])
    source = answer.sources[0]
    second_row = source["rows"][1][0]  # a stored row the answer's own words do not quote
    assert second_row not in answer.content
    for viewer in (teammate, outsider):
        html = shared_html(client, viewer, answer)
        assert UNAVAILABLE in html and "cite-unavailable" in html
        assert "The USA bought the most" in html  # the answer itself is shared
        for leak in (SALES_BY_COUNTRY, "billing_country", source["query_id"], "Chinook: invoices", second_row,
                     "query-result"):
            assert leak not in html, (viewer.username, leak)
        assert download(client, viewer, answer).status_code == 403
    assert not AuditEvent.objects.filter(action="sql.download").exists()


def test_a_revoked_viewer_can_no_longer_download(client, answer, finance_owner, accountant):
    [share] = sharing.conversation_share(conversation=answer.conversation, actor=finance_owner,
                                         usernames=["accountant"], groups=[])
    sharing.conversation_share_revoke(share=share, actor=finance_owner)
    assert download(client, accountant, answer).status_code == 404
