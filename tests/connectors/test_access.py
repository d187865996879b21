""""Why can user U see document D?": the rule that grants access, or what is missing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from connectors.access import document_access_explain
from connectors.models import Connector, Document
from connectors.selectors import documents_visible


def make_document(connector, external_id="doc.md", **acl) -> Document:
    return Document.objects.create(
        connector=connector, external_id=external_id, title=external_id, text="Text.", content_hash="x", **acl
    )


@pytest.fixture
def hr(db):
    return Group.objects.create(name="hr")


def explain(user, document):
    result = document_access_explain(user=user, document=document)
    # the explanation never disagrees with what retrieval and the document views enforce
    assert result.allowed == documents_visible(user=user).filter(id=document.id).exists()
    return result


def test_a_public_connector(db, outsider):
    connector = Connector.objects.create(name="Handbook", kind="folder", config={"path": "/srv/h"}, is_public=True)
    result = explain(outsider, make_document(connector, acl_public=True))
    assert result.allowed and result.rule == "public_connector"
    assert result.message == "Public connector: “Handbook” is visible to everyone signed in."


def test_a_group_via_the_connector_acl(db, owner, engineering):
    connector = Connector.objects.create(name="Eng wiki", kind="folder", config={"path": "/srv/e"})
    connector.groups.add(engineering)
    result = explain(owner, make_document(connector, acl_groups=["engineering", "sales"]))
    assert result.allowed and result.rule == "group_connector" and result.groups == ["engineering"]
    assert result.message == "Group engineering via the ACL of connector “Eng wiki”."


def test_a_group_via_a_folder_mapping(db, outsider, hr):
    outsider.groups.add(hr)
    connector = Connector.objects.create(
        name="Share", kind="folder", config={"path": "/srv/share", "folder_groups": {"hr": ["hr"]}}
    )
    result = explain(outsider, make_document(connector, "hr/payroll/contract.md", acl_groups=["hr"]))
    assert result.allowed and result.rule == "group_folder"
    assert result.message == "Group hr via the folder mapping hr/ of connector “Share”."


@pytest.mark.parametrize(
    "dataset,rule,phrase",
    [({"acl": "column", "acl_column": "allowed"}, "group_column", "group column value of this row"),
     ({"acl": "groups", "acl_groups": ["sales"]}, "group_dataset", "the fixed groups of its dataset")],
)
def test_a_group_from_the_source(db, outsider, dataset, rule, phrase):
    connector = Connector.objects.create(
        name="CRM", kind="postgres", config={"datasets": [{"name": "accounts", **dataset}]}
    )
    document = make_document(connector, "accounts:1", acl_groups=["sales"], acl_from_source=True,
                             metadata={"dataset": "accounts"})
    result = explain(outsider, document)
    assert result.allowed and result.rule == rule
    assert result.message == f"Group sales via {phrase} (connector “CRM”)."


def test_cannot_see_names_the_groups_that_would_grant_it(db, outsider):
    connector = Connector.objects.create(name="Eng wiki", kind="folder", config={"path": "/srv/e"})
    result = explain(outsider, make_document(connector, acl_groups=["hr", "engineering"]))
    assert not result.allowed and result.rule == "denied" and result.groups == ["engineering", "hr"]
    assert result.message == "outsider cannot see it: needs one of engineering, hr (set by connector “Eng wiki”)."
    share = Connector.objects.create(name="Share", kind="folder",
                                     config={"path": "/srv/share", "folder_groups": {"hr": ["hr"]}})
    result = explain(outsider, make_document(share, "hr/contract.md", acl_groups=["hr"]))
    assert result.message == (
        "outsider cannot see it: needs one of hr (set by the folder mapping hr/ of connector “Share”)."
    )


def test_a_document_no_group_may_see_and_an_inactive_account(db, owner):
    connector = Connector.objects.create(name="Eng wiki", kind="folder", config={"path": "/srv/e"})
    assert explain(owner, make_document(connector, "a.md")).rule == "nobody"
    owner.is_active = False
    owner.save()
    result = explain(owner, make_document(connector, "b.md", acl_public=True))
    assert not result.allowed and "inactive" in result.message


def test_staff_pick_a_user_on_the_document_page(client, staff, owner, outsider):
    connector = Connector.objects.create(name="Eng wiki", kind="folder", config={"path": "/srv/e"})
    document = make_document(connector, acl_groups=["engineering"])
    client.force_login(staff)
    url = reverse("connectors:document", args=[document.id])
    page = client.get(url).content.decode()
    assert 'name="user"' in page and '<option value="outsider">' in page
    page = client.get(url, {"user": "owner"}).content.decode()
    assert "owner can see it." in page and "Group engineering via the ACL of connector" in page
    page = client.get(url, {"user": "outsider"}).content.decode()
    assert "outsider cannot see it: needs one of engineering (set by connector “Eng wiki”)." in page
    page = client.get(url, {"user": "nobody-here"}).content.decode()
    assert "There is no user named “nobody-here”" in page


def test_the_explanation_is_not_offered_to_non_staff(client, owner):
    connector = Connector.objects.create(name="Eng wiki", kind="folder", config={"path": "/srv/e"})
    document = make_document(connector, acl_groups=["engineering"])
    client.force_login(owner)
    assert client.get(reverse("connectors:document", args=[document.id]), {"user": "owner"}).status_code == 404
