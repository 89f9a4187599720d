"""A plain ASGI application (no Channels, no websocket route): the example project as a
project without Channels serves it, with uvicorn; pages watch state over the event stream."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

application = ASGIStaticFilesHandler(get_asgi_application())
