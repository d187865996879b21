"""What an API token may do: its scopes, chosen when it is created.

A token carries only the scopes its owner ticked; every API endpoint names the scope it
needs (assistant.accounts.api_auth.token_required) and answers 403 `insufficient_scope`,
naming the missing one, to a token without it. Within its scopes a token still acts as
its owner and sees only what the owner may see.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

#: Read only: the owner's conversations and messages, the libraries each is pinned to, and the
#: conversations colleagues shared with the owner (/api/v1/shared), as the read-only page shows them.
CONVERSATIONS_READ = "conversations:read"
#: Ask questions, start and delete conversations, pin them to libraries and list the libraries the
#: owner may read; /v1/chat/completions and /v1/models.
ASK = "ask"
MCP = "mcp"  # use the assistant's tools over the Model Context Protocol (/mcp)

#: Every scope, in the order the tokens page lists them, with what it lets a program do: all of it,
#: so that a user knows what they grant (docs/api.md's table lists each scope's endpoints;
#: tests/accounts/test_token_scopes.py checks it against the code).
SCOPES: dict[str, str] = {
    CONVERSATIONS_READ: _("Read your conversations, their messages and the libraries they are pinned to, "
                          "and the conversations colleagues share with you"),
    ASK: _("Ask questions (start, continue and delete conversations, pin them to libraries, list the libraries "
           "you may read; OpenAI-compatible /v1)"),
    MCP: _("Use the assistant's tools over MCP"),
}
#: Ticked by default on the tokens page, and given by the data migration to tokens made
#: before scopes existed (they could read and ask then, so nothing breaks silently).
DEFAULT_SCOPES: tuple[str, ...] = (CONVERSATIONS_READ, ASK)


def scopes_ordered(scopes) -> list[str]:
    """Known scopes among `scopes`, without repeats, in SCOPES order."""
    wanted = set(scopes or ())
    return [scope for scope in SCOPES if scope in wanted]
