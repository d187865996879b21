"""URLs of the token-authenticated JSON API (/api/v1/) and the OpenAI-compatible one (/v1/)."""

from django.urls import path

from assistant.chat import api, library_api, openai_api, shared_api


def both(route: str, view, name: str) -> list:
    """The route with and without a trailing slash: API clients rarely add one, and a
    redirect to add it would lose a POST body."""
    return [path(route, view, name=name), path(route + "/", view)]


native = [
    *both("conversations", api.conversations, "conversations"),
    *both("conversations/<uuid:conversation_id>", api.conversation_detail, "conversation"),
    *both("conversations/<uuid:conversation_id>/messages", api.conversation_messages, "messages"),
    *both("conversations/<uuid:conversation_id>/libraries", library_api.conversation_libraries,
          "conversation_libraries"),
    *both("libraries", library_api.libraries, "libraries"),
    *both("shared", shared_api.shared_list, "shared"),
    *both("shared/<uuid:conversation_id>", shared_api.shared_detail, "shared_conversation"),
]

openai = [
    *both("models", openai_api.models, "models"),
    *both("models/<str:model_id>", openai_api.model_detail, "model"),
    *both("chat/completions", openai_api.chat_completions, "chat_completions"),
]
