"""ASGI entry point: the chat streams answers from async views."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
# The web server lends each request a pooled database connection (see DATABASE_POOL_SIZE),
# unless persistent connections were asked for instead.
if not os.environ.get("DATABASE_CONN_MAX_AGE", "").strip("0"):
    os.environ.setdefault("DATABASE_POOL_SIZE", "100")

application = get_asgi_application()
