"""URLs of the "Data sources" area (staff only), mounted at /sources/."""

from django.urls import path, re_path

from connectors import upload_views, views

app_name = "sources"

urlpatterns = [
    path("", views.source_list, name="list"),
    path("new/<slug:kind>/", views.source_create, name="create"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("audit/", views.audit_log, name="audit"),
    path("documents/<uuid:document_id>/", views.document_detail, name="document"),
    path("<uuid:connector_id>/", views.source_detail, name="detail"),
    path("<uuid:connector_id>/edit/", views.source_edit, name="edit"),
    path("<uuid:connector_id>/test/", views.source_test, name="test"),
    path("<uuid:connector_id>/progress/", views.source_progress, name="progress"),
    path("<uuid:connector_id>/documents/", views.document_list, name="documents"),
    path("<uuid:connector_id>/why/", views.why_missing, name="why"),
    path("<uuid:connector_id>/upload/", upload_views.files_upload, name="upload"),
    path("<uuid:connector_id>/files/delete/", upload_views.file_delete, name="file_delete"),
    re_path(
        r"^(?P<connector_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/"
        r"(?P<action>sync|cancel|pause|resume|reindex|delete)/$",
        views.source_action,
        name="action",
    ),
]
