from django.urls import path

from assistant.chat import views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/<uuid:conversation_id>/", views.conversation_detail, name="conversation"),
    path("c/<uuid:conversation_id>/rename/", views.conversation_rename, name="rename"),
    path("c/<uuid:conversation_id>/delete/", views.conversation_delete, name="delete"),
    path("documents/<uuid:document_id>/", views.document_detail, name="document"),
    path("attachments/<uuid:attachment_id>/", views.attachment_detail, name="attachment"),
    path("api/conversations/", views.api_conversation_create, name="api_conversation_create"),
    path("api/c/<uuid:conversation_id>/messages/", views.api_question_submit, name="api_question_submit"),
    path("api/c/<uuid:conversation_id>/attachments/", views.api_attachment_add, name="api_attachment_add"),
    path("api/attachments/<uuid:attachment_id>/delete/", views.api_attachment_remove, name="api_attachment_remove"),
    path("api/messages/<uuid:message_id>/stream/", views.api_answer_stream, name="api_answer_stream"),
    path("api/messages/<uuid:message_id>/stop/", views.api_answer_stop, name="api_answer_stop"),
]
