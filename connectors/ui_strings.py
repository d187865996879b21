"""Words the pages' scripts show, translated on the server and handed over as the data-* attributes
of one <template> element (a script reads `template.dataset`; "{n}" placeholders are filled there).

`strings_template` writes that element for every page; the tables of words live beside each area's
pages (this module for the connectors pages, `assistant/chat/ui_strings.py` for the chat).
"""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _


def strings_template(element_id: str, strings: dict) -> str:
    """`<template id=… data-key="translated text" …>`, escaped, in the active language."""
    attributes = format_html_join("", '\n  data-{}="{}"', strings.items())
    return format_html('<template id="{}"{}></template>', element_id, attributes)


#: static/js/connectors.js: sync status and progress, test connection, uploads.
CONNECTORS_STRINGS = {
    "idle": _("Idle"),
    "syncing": _("Syncing"),
    "error": _("Error"),
    "paused": _("Paused"),
    "queued": _("Queued"),
    "read": _("{n} read"),
    "counting": _("Counting…"),
    "connector-access": _("the connector's access"),
    "everyone": _("everyone"),
    "nobody": _("nobody"),
    "visible-to": _("visible to {who}"),
    "testing": _("Testing…"),
    "server-answered": _("The server answered {status}."),
    "test-failed": _("The test could not run: {error}"),
    "no-extension": _("no extension"),
    "not-accepted": _("{ext}: not accepted"),
    "too-large": _("too large (limit {limit})"),
    "uploading": _("Uploading…"),
}

#: static/js/dataset-editor.js and dataset-card.js: the dataset editor of database connectors.
DATASET_EDITOR_STRINGS = {
    "title-default": _("— the row's id —"),
    "title-template": _("A template…"),
    "no-cursor": _("— none —"),
    "pick-column": _("— pick a column —"),
    "pick-table": _("— pick a table —"),
    "connect-first": _("— test the connection to list tables —"),
    "tables": _("Tables"),
    "views": _("Views"),
    "no-columns": _("Pick a table (or read the query’s columns) first."),
    "new-dataset": _("New dataset"),
    "not-a-list": _("The datasets above are not a JSON list; fix them as JSON, or empty the field to start again."),
    "connecting": _("Connecting…"),
    "connected": _("✓ Connected to {server}, database {database}. Tables and views: {count}."),
    "truncated": _("Only the first ones are listed."),
    "preview-waits": _("Pick a table (or write a query) and its id columns to see two rows here."),
    "previewing": _("Reading two rows…"),
    "left-out": _("Left out: {columns}."),
    "preview-ready": _("The documents of the first rows, by id."),
    "no-rows": _("The dataset has no rows yet."),
    "preview-failed": _("No preview: fix the problem marked above."),
}
