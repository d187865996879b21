"""URLs of the "Connectors" pages (staff only), mounted at /connectors/ (the old /sources/ redirects here)."""

from django.urls import path, re_path

from connectors import dataset_views, index_views, upload_views, views

app_name = "connectors"

urlpatterns = [
    path("", views.connector_list, name="list"),
    path("new/<slug:kind>/", views.connector_create, name="create"),
    path("new/<slug:kind>/tables/", dataset_views.new_tables, name="new_tables"),
    path("new/<slug:kind>/preview/", dataset_views.new_preview, name="new_preview"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("audit/", views.audit_log, name="audit"),
    path("index/", index_views.index_page, name="index"),
    path("index/rebuild/", index_views.index_rebuild, name="index_rebuild"),
    path("index/progress/", index_views.index_progress, name="index_progress"),
    path("documents/<uuid:document_id>/", views.document_detail, name="document"),
    path("<uuid:connector_id>/", views.connector_detail, name="detail"),
    path("<uuid:connector_id>/edit/", views.connector_edit, name="edit"),
    path("<uuid:connector_id>/test/", views.connector_test, name="test"),
    path("<uuid:connector_id>/tables/", dataset_views.saved_tables, name="tables"),
    path("<uuid:connector_id>/preview/", dataset_views.saved_preview, name="preview"),
    path("<uuid:connector_id>/progress/", views.connector_progress, name="progress"),
    path("<uuid:connector_id>/documents/", views.document_list, name="documents"),
    path("<uuid:connector_id>/why/", views.why_missing, name="why"),
    path("<uuid:connector_id>/upload/", upload_views.files_upload, name="upload"),
    path("<uuid:connector_id>/files/delete/", upload_views.file_delete, name="file_delete"),
    re_path(
        r"^(?P<connector_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/"
        r"(?P<action>sync|cancel|pause|resume|reindex|delete)/$",
        views.connector_action,
        name="action",
    ),
]
