"""list_sources: the connectors the user may search, so the model can pick where to look."""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils.translation import gettext as _, ngettext
from pydantic import BaseModel, ConfigDict

from assistant.agent.registry import Tool, ToolContext, ToolResult, register
from assistant.agent.tools.common import connectors_visible, reader_groups
from connectors.sources.registry import SOURCES


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _described(connector, documents: int) -> str:
    source = SOURCES.get(connector.kind)
    kind = f"{connector.kind} ({source.label})" if source else connector.kind
    synced = (
        connector.last_success_at.strftime("%Y-%m-%d %H:%M UTC") if connector.last_success_at else _("never")
    )
    lines = [
        f"- {connector.name}",
        "  " + _("kind: %(kind)s") % {"kind": kind},
        "  " + ngettext("%(count)d document you may read", "%(count)d documents you may read", documents)
        % {"count": documents},
        "  " + _("last synced: %(when)s") % {"when": synced},
    ]
    if connector.description:
        lines.insert(1, "  " + _("about: %(description)s") % {"description": connector.description})
    return "\n".join(lines)


@register
class ListSources(Tool):
    name = "list_sources"
    description = (
        "List the sources (connectors) of company documents the user may search: name, kind, what they hold, "
        "how many documents, when last synced. Pass names to search_knowledge's 'sources' to search only there."
    )
    Arguments = NoArguments
    default_on = True
    mcp = True

    def label(self, arguments) -> str:
        return _("Listing the sources…")

    def run(self, context: ToolContext, arguments: NoArguments) -> ToolResult:
        groups = reader_groups(context)
        # Only documents the user may read are counted: a count of hidden ones would tell too much.
        readable = Q(documents__acl_public=True)
        if groups:
            readable |= Q(documents__acl_groups__overlap=groups)
        connectors = list(connectors_visible(context, groups).annotate(readable=Count("documents", filter=readable)))
        if not connectors:
            return ToolResult(content=_("This user may not search any source."), summary=_("No sources"))
        content = _("Sources this user may search:") + "\n" + "\n".join(
            _described(connector, connector.readable) for connector in connectors
        )
        summary = ngettext("%(count)d source", "%(count)d sources", len(connectors)) % {"count": len(connectors)}
        return ToolResult(content=content, summary=summary)

