"""URLs of the libraries pages, mounted at /libraries/ (every signed-in user)."""

from django.urls import path

from assistant.libraries import views

app_name = "libraries"

urlpatterns = [
    path("", views.library_list, name="list"),
    path("new/", views.library_create, name="create"),
    path("<uuid:library_id>/", views.library_detail, name="detail"),
    path("<uuid:library_id>/rename/", views.library_rename, name="rename"),
    path("<uuid:library_id>/delete/", views.library_delete, name="delete"),
    path("<uuid:library_id>/share/", views.library_share, name="share"),
    path("<uuid:library_id>/upload/", views.library_upload, name="upload"),
    path("<uuid:library_id>/files/remove/", views.library_file_remove, name="file_remove"),
    path("<uuid:library_id>/ask/", views.library_ask, name="ask"),
]
