"""Words the chat page's scripts show, by the <template> that carries them
(written by `connectors.ui_strings.strings_template`, read as `dataset` by the scripts named)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

#: <template id="strings">, read by chat-core.js and net.js: answers, errors, attachments, the sidebar toggle.
STRINGS = {
    "retry": _("Retry"),
    "sources": _("Sources"),
    "source-unavailable": _("Source no longer available"),
    "lost-connection": _("Lost the connection to the server."),
    "network": _("Could not reach the server. Check your connection and try again."),
    "session": _("Your session has expired. Reload the page and sign in again."),
    "server": _("Something went wrong. Please try again."),
    "stopped": _("Stopped."),
    "stop-failed": _("Could not stop the answer on the server."),
    "confirm-delete": _("Delete this conversation?"),
    "new-conversation": _("New conversation"),
    "show-sidebar": _("Show conversations"),
    "hide-sidebar": _("Hide conversations"),
    "attach-failed": _("Could not attach the file."),
    "remove-file": _("Remove"),
    "uploading": _("Attaching…"),
    # an answer's steps, the working indicator and the sources under it (chat-steps.js, chat-sources.js)
    "working": _("Thinking…"),
    "steps-one": _("{n} step"),
    "steps-other": _("{n} steps"),
    "step-sources": _("Sources of this step"),
    "step-running": _("In progress"),
    "step-error": _("Failed"),
    "step-cancelled": _("Cancelled"),
    "cited": _("Cited"),
    "show-all-sources": _("Show all {n} sources"),
    "show-fewer-sources": _("Show fewer sources"),
    # a query result under an answer (chat-query.js)
    "query-sql": _("SQL query"),
    "download-csv": _("Download CSV"),
    "sort-by": _("Sort by {column}"),
    "chart": _("Chart of the query result"),
    "rows-one": _("{n} row"),
    "rows-other": _("{n} rows"),
    "rows-first": _("The first {shown} of {count} rows"),
    "rows-more": _("The first {shown} rows; the query returned more than {count}"),
}

#: <template id="ux-strings">, read by sidebar.js and messages.js: the sidebar, copy buttons, versions, editing.
UX_STRINGS = {
    "deleted": _("Conversation deleted."),
    "undo": _("Undo"),
    "restored": _("Conversation restored."),
    "pinned": _("Pinned"),
    "today": _("Today"),
    "copied": _("Copied"),
    "copy": _("Copy"),
    "copy-code": _("Copy code"),
    "copy-failed": _("Could not copy; select the text and copy it by hand."),
    "versions": _("Versions"),
    "previous-version": _("Previous version"),
    "next-version": _("Next version"),
    "save-send": _("Send"),
    "cancel": _("Cancel"),
    "edit-label": _("Edit your question"),
    "no-results": _("No conversation matches."),
    "server": _("Something went wrong. Please try again."),
    "image-hint": _("Images in answers are not loaded; open the link to see it."),
}

#: <template id="feature-strings">, read by feedback.js, assistants.js and memory.js: ratings, assistants, memory.
FEATURE_STRINGS = {
    "comment-up": _("What was good? (optional)"),
    "comment-down": _("What could be better? (optional)"),
    "thanks": _("Thanks for your feedback."),
    "feedback-failed": _("Could not save your feedback. Try again."),
    "assistant-set": _("Answers now come from {name}."),
    "assistant-failed": _("Could not change the assistant."),
    "memory-on": _("Memory is on."),
    "memory-off": _("Memory is off."),
    "memory-failed": _("Could not change the memory setting."),
}

#: <template id="share-strings">, read by chat-share.js: the share dialog.
SHARE_STRINGS = {
    "revoke": _("Revoke"),
    "revoke-label": _("Stop sharing with {name}"),
    "group": _("group"),
    "shared": _("Shared."),
    "revoked": _("No longer shared with {name}."),
    "load-failed": _("Could not load who this conversation is shared with."),
    "server": _("Something went wrong. Please try again."),
}

#: Each <template id> of the chat page and its words.
TEMPLATES = {"strings": STRINGS, "ux-strings": UX_STRINGS, "feature-strings": FEATURE_STRINGS,
             "share-strings": SHARE_STRINGS}
