"""System checks for the STATEKIT setting (IDs statekit.E0xx / statekit.W0xx / statekit.I0xx)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.urls import NoReverseMatch, reverse

from statekit.backends import backend_class
from statekit.conf import SettingsError, get_settings
from statekit.keys import Scope
from statekit.lifecycle.page_resources import PageResource
from statekit.lifecycle.resources import SessionResource, any_in_use
from statekit.live.wiring import events_url, websocket_route_missing
from statekit.registry import declared, load_declarations
from statekit.streams.feeds import hub

PROCESS_LOCAL = (LocMemCache, DummyCache, FileBasedCache)


def _cache_messages(conf: dict[str, Any]) -> list[CheckMessage]:
    # statekit[redis], there when cls imported
    from statekit.backends.cluster import problem
    from statekit.backends.redis import redis_client

    if conf["REDIS_CLUSTER"] is not None:  # a Redis Cluster, in place of the cache alias
        wrong = problem(conf["REDIS_CLUSTER"])
        hint = (
            'Set STATEKIT["REDIS_CLUSTER"] to a list of node URLs, e.g. ["redis://10.0.0.1:6379"].'
        )
        return [] if wrong is None else [Error(wrong, hint=hint, id="statekit.E009")]
    alias = conf["CACHE_ALIAS"]
    backend = conf["BACKEND"]
    if alias not in caches.settings:
        return [
            Error(
                f'STATEKIT["CACHE_ALIAS"] = {alias!r} is not in CACHES.',
                hint='Set STATEKIT["CACHE_ALIAS"] to a Redis cache alias defined in CACHES.',
                id="statekit.E002",
            )
        ]
    cache = caches[alias]
    if isinstance(cache, PROCESS_LOCAL):
        return [
            Error(
                f'STATEKIT["BACKEND"] = {backend!r} uses the cache {alias!r}, a '
                f"{type(cache).__name__}, which is local to one process: other workers "
                "would not see the state.",
                hint='Point STATEKIT["CACHE_ALIAS"] at a django-redis cache, or use '
                'STATEKIT["BACKEND"] = "db".',
                id="statekit.E003",
            )
        ]
    if redis_client(cache) is None:
        return [
            Error(
                f'STATEKIT["BACKEND"] = {backend!r} needs atomic operations the cache '
                f"{alias!r} ({type(cache).__name__}) does not have.",
                hint='Point STATEKIT["CACHE_ALIAS"] at a django-redis cache (or Django\'s '
                'RedisCache), or use STATEKIT["BACKEND"] = "db".',
                id="statekit.E004",
            )
        ]
    return []


def _positive(
    conf: dict[str, Any], key: str, id: str, example: float, *, seconds: bool = False
) -> list[CheckMessage]:
    """An error if ``STATEKIT[key]`` is not a positive integer (or number of seconds)."""
    value = conf[key]
    kinds = (int, float) if seconds else (int,)
    if not isinstance(value, bool) and isinstance(value, kinds) and value > 0:
        return []
    what = "a positive number of seconds" if seconds else "a positive integer"
    return [
        Error(
            f'STATEKIT["{key}"] = {value!r} is not {what}.',
            hint=f'Set STATEKIT["{key}"] to {what}, e.g. {example}.',
            id=id,
        )
    ]


# Not Tags.database: it reads the settings only, and Django 6 leaves database-tagged checks
# out of a plain ``manage.py check``.
@register(Tags.caches, "statekit")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        conf = get_settings()
    except SettingsError as exc:
        return [Error(str(exc), hint=exc.hint, id="statekit.E001")]
    try:
        cls = backend_class(conf["BACKEND"])
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint='Set STATEKIT["BACKEND"] to "db", "cache", "cached_db" or a dotted path.',
                id="statekit.E001",
            )
        ]
    messages: list[CheckMessage] = []
    if cls.uses_database and conf["DATABASE"] not in connections.settings:
        messages.append(
            Error(
                f'STATEKIT["DATABASE"] = {conf["DATABASE"]!r} is not in DATABASES.',
                hint='Set STATEKIT["DATABASE"] to a database alias defined in DATABASES.',
                id="statekit.E005",
            )
        )
    if cls.uses_cache:
        messages += _cache_messages(conf)
    return messages + _positive(conf, "MAX_VALUE_BYTES", "statekit.E006", 1048576)


@register("statekit")
def check_lifecycle(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Sessions and lifetimes: statekit.W001, statekit.E007, statekit.E008."""
    messages: list[CheckMessage] = []
    middleware = "statekit.middleware.StatekitMiddleware"
    if middleware not in settings.MIDDLEWARE:
        messages.append(
            Warning(
                f"{middleware} is not in MIDDLEWARE: session state would be lost at login "
                "(cycle_key), and BrowserState could not be written.",
                hint=f"Add '{middleware}' to MIDDLEWARE, below SessionMiddleware.",
                id="statekit.W001",
            )
        )
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.signed_cookies":
        messages.append(
            Error(
                "SESSION_ENGINE is signed_cookies, whose session key changes with its content, "
                "so session and page state would have no stable owner.",
                hint='Set SESSION_ENGINE to "django.contrib.sessions.backends.db", "cache" '
                'or "cached_db".',
                id="statekit.E007",
            )
        )
    try:
        conf = get_settings()
    except ImproperlyConfigured:
        return messages  # Reported as statekit.E001 by check_settings.
    for key in ("PAGE_CLOSED_TTL", "RESOURCE_SWEEP_SECONDS", "CACHE_TIMEOUT"):
        messages += _positive(conf, key, "statekit.E008", 60, seconds=True)
    return messages


@register("statekit")
def check_browser_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The BrowserState settings: statekit.E020 and statekit.E021."""
    try:
        conf = get_settings()
    except ImproperlyConfigured:
        return []  # Reported as statekit.E001 by check_settings.
    messages: list[CheckMessage] = []
    prefix = conf["BROWSER_PREFIX"]
    if not isinstance(prefix, str) or not prefix:
        messages.append(
            Error(
                f'STATEKIT["BROWSER_PREFIX"] = {prefix!r} is not a non-empty string.',
                hint='Set STATEKIT["BROWSER_PREFIX"] to the start of statekit\'s localStorage '
                'keys, e.g. "myproject:".',
                id="statekit.E020",
            )
        )
    return messages + _positive(conf, "BROWSER_MAX_BYTES", "statekit.E021", 4096)


# -- live state (websockets) -------------------------------------------------------------------


@register("statekit")
def check_live_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Live state: statekit.E030 (WS_PATH), E031 (websocket limits)."""
    try:
        conf = get_settings()
    except ImproperlyConfigured:
        return []  # Reported as statekit.E001 by check_settings.
    messages: list[CheckMessage] = []
    path = conf["WS_PATH"]
    if not (isinstance(path, str) and len(path) > 2 and path[0] == path[-1] == "/"):
        messages.append(
            Error(
                f'STATEKIT["WS_PATH"] = {path!r} is not a path that starts and ends with "/".',
                hint='Set STATEKIT["WS_PATH"] to the websocket path, e.g. "/ws/statekit/".',
                id="statekit.E030",
            )
        )
    for key, example in (("WS_MAX_MESSAGE_BYTES", 4096), ("WS_MAX_WATCHES", 100)):
        messages += _positive(conf, key, "statekit.E031", example)
    return messages


# -- wiring: URLs and the websocket route --------------------------------------------------


@register("statekit")
def check_wiring(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Missing wiring statekit can see: statekit.W002 (statekit.urls), W031 (no websocket
    route nor event stream)."""
    messages: list[CheckMessage] = []
    try:
        load_declarations()  # the URLconf: variables its views declare
        reverse("statekit:page-close")
    except NoReverseMatch:
        users = [f"PageState {v.name!r}" for v in declared(Scope.PAGE)]
        users += ["session resources"] if any_in_use(SessionResource) else []
        users += ["page resources"] if any_in_use(PageResource) else []
        if users:
            messages.append(
                Warning(
                    f"statekit.urls is not included in ROOT_URLCONF, but {', '.join(users)} "
                    "are declared: closed pages would keep their state and resources until "
                    "their ttl or the session's end.",
                    hint='Add path("statekit/", include("statekit.urls")) to urlpatterns.',
                    id="statekit.W002",
                )
            )
    except Exception:
        pass  # A broken URLconf is reported by Django's own checks (urls.E...).
    public = [v.name for v in declared(Scope.GLOBAL) if getattr(v, "public", False)]
    why = websocket_route_missing() if public else None
    if why and events_url() is None:  # neither the websocket nor the event stream
        messages.append(
            Warning(
                f"{why}, and statekit.urls (its event stream) is not included, but public "
                f"state is declared ({', '.join(sorted(public))}): statekit.watch() in pages "
                "would never connect, so they get no live changes.",
                hint='Add path("statekit/", include("statekit.urls")) to urlpatterns and '
                'serve the project with an ASGI server (uvicorn), or route "websocket" to '
                "URLRouter(statekit.routing.websocket_urlpatterns) in ASGI_APPLICATION "
                "(see the README's Install section).",
                id="statekit.W031",
            )
        )
    return messages


@register("statekit", deploy=True)
def check_prepared_statements(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``check --deploy``: statekit.I010, statekit's statements parsed and planned again on
    every call (PostgreSQL with psycopg 3, and no ``prepare_threshold``)."""
    try:
        conf = get_settings()
        uses_database = backend_class(conf["BACKEND"]).uses_database
    except (SettingsError, ImproperlyConfigured):
        return []  # check_settings reports these
    alias = conf.get("DATABASE")
    if not uses_database or alias not in connections.settings:
        return []
    connection = connections[alias]
    driver = getattr(getattr(connection, "Database", None), "__name__", "")
    options = connection.settings_dict.get("OPTIONS") or {}
    if connection.vendor != "postgresql" or driver != "psycopg" or "prepare_threshold" in options:
        return []
    return [
        Info(
            f"statekit's statements on the database {alias!r} are parsed and planned again on "
            "every call: Django keeps psycopg's prepared statements off unless asked.",
            hint=f'Set DATABASES["{alias}"]["OPTIONS"]["prepare_threshold"] = 5 (an incr then '
            "costs about a fifth less), unless a pooler in transaction mode that cannot keep "
            "prepared statements sits in between (PgBouncer before 1.21); None keeps them off "
            "and silences this.",
            id="statekit.I010",
        )
    ]


@register("statekit", deploy=True)
def check_streams(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``check --deploy`` (production runs several processes): statekit.I032, change streams
    (``changes()``, the websocket, the event stream) that reach one process only (db on
    SQLite without a network channel layer)."""
    messages: list[CheckMessage] = []
    public = [v.name for v in declared(Scope.GLOBAL) if getattr(v, "public", False)]
    try:
        shared = hub().shared
    except Exception:
        return []  # A backend that cannot be built is reported by check_settings.
    if public and not shared:
        messages.append(
            Info(
                f"Change streams of {get_settings()['BACKEND']!r} on this database reach this "
                "process only: with several worker processes, a page (websocket or event "
                "stream) or changes() follows the changes of its own process only.",
                hint='Run one process, or use PostgreSQL, or STATEKIT["BACKEND"] = "cache" or '
                '"cached_db" (Redis), or carry them on a channels-redis layer: CHANNEL_LAYERS '
                'with the alias STATEKIT["CHANNEL_LAYER"] ("default").',
                id="statekit.I032",
            )
        )
    return messages
