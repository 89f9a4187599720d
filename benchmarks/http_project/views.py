"""The views the benchmark loads: statekit, the raw operation it wraps ("floor"), nothing.

Each comes sync (under gunicorn) and async (under uvicorn). The floor is the same view doing
the raw operation through the connections Django already holds: redis-py ``INCR`` through
``django_redis.get_redis_connection`` on "cache"; ``UPDATE ... SET v = v + 1 RETURNING v`` on
the database for "db" (plus the ``DEL`` of a cached copy for "cached_db"); the session read
is Django's own ``request.session`` read on the matching session engine. Async floors go
through ``sync_to_async``, as statekit's async calls and Django's ORM do.
"""

from __future__ import annotations

from itertools import count

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django_redis import get_redis_connection

from statekit import GlobalState, SessionState

counter = GlobalState("bench.counter", default=0)
seen = SessionState("bench.seen", default=0)
seen_ttl = SessionState("bench.seen_ttl", default=0, ttl=3600)

FLOOR_KEY = f"{settings.PREFIX}:floor"
calls = count()  # this process's requests to the session mix


def raw_incr() -> int:
    if settings.STATEKIT_BACKEND == "cache":
        return int(get_redis_connection("default").incr(FLOOR_KEY))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bench_floor SET v = v + 1 WHERE id = 1 RETURNING v")
        value = int(cursor.fetchone()[0])
    if settings.STATEKIT_BACKEND == "cached_db":
        get_redis_connection("default").delete(FLOOR_KEY)
    return value


def text(value: object) -> HttpResponse:
    return HttpResponse(str(value), content_type="text/plain")


def empty(request: HttpRequest) -> HttpResponse:
    return text("")


def kit(request: HttpRequest) -> HttpResponse:
    return text(counter.incr())


def floor(request: HttpRequest) -> HttpResponse:
    return text(raw_incr())


def session(request: HttpRequest) -> HttpResponse:
    return text(seen.get(request))


def session_ttl(request: HttpRequest) -> HttpResponse:
    return text(seen_ttl.get(request))


def session_floor(request: HttpRequest) -> HttpResponse:
    return text(request.session.get("seen", 0))


def mix(request: HttpRequest) -> HttpResponse:
    """A session's read/write mix (bench_scale.py): three reads to one atomic write."""
    if next(calls) % 4 == 0:
        return text(seen.incr(request))
    return text(seen.get(request))


async def aempty(request: HttpRequest) -> HttpResponse:
    return text("")


async def akit(request: HttpRequest) -> HttpResponse:
    return text(await counter.aincr())


async def afloor(request: HttpRequest) -> HttpResponse:
    return text(await sync_to_async(raw_incr)())


async def asession(request: HttpRequest) -> HttpResponse:
    return text(await seen.aget(request))


async def asession_ttl(request: HttpRequest) -> HttpResponse:
    return text(await seen_ttl.aget(request))


async def asession_floor(request: HttpRequest) -> HttpResponse:
    return text(await request.session.aget("seen", 0))


async def amix(request: HttpRequest) -> HttpResponse:
    if next(calls) % 4 == 0:
        return text(await seen.aincr(request))
    return text(await seen.aget(request))
