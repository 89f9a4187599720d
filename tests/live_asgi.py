"""The ASGI application of the live tests' server processes: the example project, with its
static files (statekit.js) served as Django's runserver does."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from example_project.asgi import application as site

application = ASGIStaticFilesHandler(site)
