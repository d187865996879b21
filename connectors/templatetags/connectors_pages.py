"""`{% connectors_strings %}`: the words static/js/connectors.js (and the dataset editor) shows, in the page's language."""

from __future__ import annotations

from django import template

from connectors.ui_strings import CONNECTORS_STRINGS, DATASET_EDITOR_STRINGS, strings_template

register = template.Library()


@register.simple_tag
def connectors_strings() -> str:
    return strings_template("connectors-strings", {**CONNECTORS_STRINGS, **DATASET_EDITOR_STRINGS})
