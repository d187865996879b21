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
