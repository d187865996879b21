from django.urls import path

from assistant.chat import feature_views, library_views, query_download, share_views, views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/<uuid:conversation_id>/", views.conversation_detail, name="conversation"),
    path("c/<uuid:conversation_id>/rename/", views.conversation_rename, name="rename"),
    path("c/<uuid:conversation_id>/delete/", views.conversation_delete, name="delete"),
    path("c/<uuid:conversation_id>/restore/", views.conversation_restore, name="restore"),
    path("c/<uuid:conversation_id>/pin/", views.conversation_pin, name="pin"),
    path("c/<uuid:conversation_id>/libraries/", library_views.conversation_libraries, name="libraries"),
    path("libraries/new/", library_views.conversation_new_pinned, name="libraries_new"),
    path("api/conversations/search/", views.api_conversation_search, name="api_conversation_search"),
    path("api/messages/<uuid:message_id>/regenerate/", views.api_answer_regenerate, name="api_answer_regenerate"),
    path("api/messages/<uuid:message_id>/edit/", views.api_question_edit, name="api_question_edit"),
    path("api/messages/<uuid:message_id>/activate/", views.api_message_activate, name="api_message_activate"),
    path("documents/<uuid:document_id>/", views.document_detail, name="document"),
    path("attachments/<uuid:attachment_id>/", views.attachment_detail, name="attachment"),
    path("answers/<uuid:message_id>/queries/<uuid:query_id>.csv", query_download.query_csv, name="query_csv"),
    path("api/conversations/", views.api_conversation_create, name="api_conversation_create"),
    path("api/c/<uuid:conversation_id>/messages/", views.api_question_submit, name="api_question_submit"),
    path("api/c/<uuid:conversation_id>/attachments/", views.api_attachment_add, name="api_attachment_add"),
    path("api/attachments/<uuid:attachment_id>/delete/", views.api_attachment_remove, name="api_attachment_remove"),
    path("api/messages/<uuid:message_id>/stream/", views.api_answer_stream, name="api_answer_stream"),
    path("api/messages/<uuid:message_id>/stop/", views.api_answer_stop, name="api_answer_stop"),
    # assistants, feedback, memory, retry (feature_views)
    path(
        "api/c/<uuid:conversation_id>/assistant/", feature_views.api_conversation_assistant,
        name="api_conversation_assistant",
    ),
    path("api/messages/<uuid:message_id>/retry/", feature_views.api_answer_retry, name="api_answer_retry"),
    path("api/messages/<uuid:message_id>/feedback/", feature_views.api_message_feedback, name="api_message_feedback"),
    path("feedback/", feature_views.feedback_list, name="feedback_list"),
    path("feedback/export.csv", feature_views.feedback_export, name="feedback_export"),
    path("memories/", feature_views.memory_list, name="memories"),
    path("memories/toggle/", feature_views.memory_toggle, name="memory_toggle"),
    path("memories/add/", feature_views.memory_add, name="memory_add"),
    path("memories/<uuid:memory_id>/edit/", feature_views.memory_edit, name="memory_edit"),
    path("memories/<uuid:memory_id>/delete/", feature_views.memory_delete, name="memory_delete"),
    # sharing a conversation read-only (share_views)
    path("shared/", share_views.shared_list, name="shared_list"),
    path("shared/<uuid:conversation_id>/", share_views.shared_conversation, name="shared_conversation"),
    path("api/c/<uuid:conversation_id>/shares/", share_views.api_shares, name="api_shares"),
    path("api/shares/<uuid:share_id>/revoke/", share_views.api_share_revoke, name="api_share_revoke"),
]
