"""msa chassis: the cross-cutting parts every service shares, each done one way.

Import the stable names from here; the modules hold the details.
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
