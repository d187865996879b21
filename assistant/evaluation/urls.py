from django.urls import path

from assistant.evaluation import case_views, profile_views, run_views

app_name = "evaluation"

urlpatterns = [
    path("", run_views.dashboard, name="dashboard"),
    path("runs/start/", run_views.run_start, name="run_start"),
    path("runs/<uuid:run_id>/", run_views.run_detail, name="run"),
    path("runs/<uuid:run_id>/progress/", run_views.run_progress, name="run_progress"),
    path("compare/", run_views.run_compare, name="compare"),
    path("profiles/", profile_views.profile_list, name="profiles"),
    path("profiles/<uuid:profile_id>/", profile_views.profile_edit, name="profile"),
    path("profiles/<uuid:profile_id>/delete/", profile_views.profile_delete, name="profile_delete"),
    path("cases/", case_views.case_list, name="cases"),
    path("cases/new/", case_views.case_new, name="case_new"),
    path("cases/export.jsonl", case_views.case_export, name="case_export"),
    path("cases/import/", case_views.case_import, name="case_import"),
    path("cases/<uuid:case_id>/", case_views.case_edit, name="case"),
    path("cases/<uuid:case_id>/delete/", case_views.case_delete, name="case_delete"),
]
