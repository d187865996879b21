from django.urls import path

from assistant.accounts import token_views

app_name = "tokens"

urlpatterns = [
    path("", token_views.tokens, name="list"),
    path("<uuid:token_id>/revoke/", token_views.token_revoke, name="revoke"),
]
