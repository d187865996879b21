"""`{% table %}`: the one markup of a data table on the pages beside the chat.

    {% load tables %}
    {% table "table-runs" _("Status") _("Seen")|num _("Actions")|hidden %}
      {% for run in runs %}<tr>…</tr>{% endfor %}
    {% endtable %}

renders the scrolling wrapper, the table with its class, a head of `<th scope="col">` cells
(`|num` right-aligns a column of numbers, `|hidden` keeps a label for screen readers only)
and the body between the tags. Written once so every table reads the same to a screen reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.text import smart_split

register = template.Library()


@dataclass(frozen=True)
class Column:
    label: str
    css: str = ""
    hidden: bool = False


@register.filter
def num(label) -> Column:
    """A column of numbers: right-aligned."""
    return Column(label, css="num")


@register.filter
def hidden(label) -> Column:
    """A column whose label only a screen reader reads (the row's actions)."""
    return Column(label, hidden=True)


def _head_cell(column: Column):
    label = format_html('<span class="visually-hidden">{}</span>', column.label) if column.hidden else column.label
    css = format_html(' class="{}"', column.css) if column.css else ""
    return format_html('<th scope="col"{}>{}</th>', css, label)


class TableNode(template.Node):
    def __init__(self, css, columns, body):
        self.css, self.columns, self.body = css, columns, body

    def render(self, context) -> str:
        columns = [c if isinstance(c, Column) else Column(c) for c in (e.resolve(context) for e in self.columns)]
        head = format_html_join("", "{}", ((_head_cell(c),) for c in columns))
        return format_html(
            '<div class="table-wrap">\n<table class="table {}">\n<thead><tr>{}</tr></thead>\n<tbody>{}</tbody>\n'
            "</table>\n</div>",
            self.css.resolve(context), head, self.body.render(context),
        )


@register.tag("table")
def table(parser, token) -> TableNode:
    bits = list(smart_split(token.contents))  # split_contents() cannot read _("…")|filter
    if len(bits) < 3:
        raise template.TemplateSyntaxError("{% table %} takes the table's class and at least one column label")
    body = parser.parse(("endtable",))
    parser.delete_first_token()
    return TableNode(parser.compile_filter(bits[1]), [parser.compile_filter(bit) for bit in bits[2:]], body)
