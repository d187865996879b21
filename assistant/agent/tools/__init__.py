"""The tools, one module each; importing this package registers them."""

from assistant.agent.tools import database, list_sources, read_document, search_knowledge  # noqa: F401  (they register)
