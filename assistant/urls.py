from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from assistant.chat import api_urls
from connectors.views import sources_moved

def healthz(request):
    """Liveness for load balancers and compose healthchecks."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", RedirectView.as_view(pattern_name="chat:home", permanent=False)),
    path("accounts/", include("assistant.accounts.signin_urls")),  # login (rate-limited), logout, OIDC
    path("chat/", include("assistant.chat.urls")),
    path("connectors/", include("connectors.urls")),
    path("libraries/", include("assistant.libraries.urls")),  # users' own libraries of files
    path("evaluation/", include("assistant.evaluation.urls")),  # evaluation cases and runs (staff)
    re_path(r"^sources/(?P<rest>.*)$", sources_moved, name="sources_moved"),  # the pages' old address: 301
    path("accounts/tokens/", include("assistant.accounts.token_urls")),
    path("api/v1/", include((api_urls.native, "api"))),  # JSON API with personal tokens (docs/api.md)
    path("v1/", include((api_urls.openai, "openai"))),  # OpenAI-compatible: /v1/models, /v1/chat/completions
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the interface language switcher
]
