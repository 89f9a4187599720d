"""Optional dependencies: the db backend needs only Django; the rest comes with an extra.

``pip install "statekit[redis]"`` for the ``cache`` and ``cached_db`` backends,
``"statekit[live]"`` for live state over Channels, ``"statekit[all]"`` for everything.
"""

from __future__ import annotations

from importlib.util import find_spec

from django.core.exceptions import ImproperlyConfigured

#: The extra that installs each optional top-level package.
EXTRAS = {"redis": "redis", "django_redis": "redis", "channels": "live"}


def installed(package: str) -> bool:
    """Whether the optional ``package`` can be imported."""
    return find_spec(package) is not None


def missing_extra(error: ImportError, feature: str) -> ImproperlyConfigured | ImportError:
    """The error to raise for ``error`` when ``feature`` was configured: one naming the extra
    to install if an optional package is missing, else ``error`` itself."""
    package = (error.name or "").partition(".")[0]
    if package not in EXTRAS:
        return error
    return ImproperlyConfigured(
        f"{feature} needs the {package!r} package, which is not installed: "
        f'pip install "statekit[{EXTRAS[package]}]".'
    )
