"""Sign-in URLs, mounted at /accounts/ (names used by Django and mozilla-django-oidc)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from assistant.accounts import signin

urlpatterns = [
    path("login/", signin.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/authenticate/", signin.oidc_authenticate, name="oidc_authentication_init"),
    path("oidc/callback/", signin.oidc_callback, name="oidc_authentication_callback"),
]
