"""msa chassis: the cross-cutting parts every service shares, each done one way.

The import rule for members (``tests/test_workspace_rules.py`` checks it): the names below are
imported from ``chassis`` itself; every other name from the module that owns it
(``from chassis.auth import CurrentUser``, ``from chassis.params import id_path``).
"""

from chassis.app import create_app, serve
from chassis.breakers import Breaker, BreakerRegistry, RollingMetrics
from chassis.dependencies import RedisDep, downstream, get_redis, get_settings
from chassis.errors import PROBLEM_JSON, ServiceError, problem_response
from chassis.health import ReadyCheck
from chassis.http import Downstream, DownstreamError, DownstreamUnavailable
from chassis.settings import BreakerSettings, HttpSettings, LiveSettings, ServiceSettings
from chassis.tracing import current_trace_id

__all__ = [
    "PROBLEM_JSON",
    "Breaker",
    "BreakerRegistry",
    "BreakerSettings",
    "Downstream",
    "DownstreamError",
    "DownstreamUnavailable",
    "HttpSettings",
    "LiveSettings",
    "ReadyCheck",
    "RedisDep",
    "RollingMetrics",
    "ServiceError",
    "ServiceSettings",
    "create_app",
    "current_trace_id",
    "downstream",
    "get_redis",
    "get_settings",
    "problem_response",
    "serve",
]
