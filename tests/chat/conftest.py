"""Fixtures for the agent's tests: the scripted tool-calling model server and test-only tools."""

from __future__ import annotations

import pytest

from assistant.chat.assistants import assistant_default
from tests.chat.agent_tools import TEST_TOOLS, register_test_tools, unregister_test_tools


@pytest.fixture
def agent_tools(db):
    """The test tools registered, and the default assistant allowed all of them; yields it."""
    register_test_tools()
    assistant = assistant_default()
    assistant.tools = [tool.name for tool in TEST_TOOLS]
    assistant.save()
    yield assistant
    unregister_test_tools()
