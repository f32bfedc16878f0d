"""The one way to call another service: ``Downstream``.

Each downstream gets one ``httpx.AsyncClient`` (owned by the app lifespan; its connections pooled
by aiohttp underneath, see ``chassis.transport``), a whole-call time budget (cut to what is left of
the request's deadline, which travels on as ``X-Deadline-Ms``: ``chassis.deadline``), a bulkhead
bounding the calls in flight (``chassis.bulkhead``), retries of idempotent calls within a retry
budget, a named breaker ``<caller>-><callee>`` whose state replicas share through Redis, an
optional fallback, and rolling metrics for the dashboard. Tracing wraps the transport, so every
call (every attempt) is a span and carries W3C trace context.

One call, in order: deadline passed? -> bulkhead place (else ``rejected``) -> breaker (open:
``short_circuited``) -> attempts until a verdict -> the breaker counts that verdict once.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pybreaker
import redis
from opentelemetry import trace

from chassis import deadline
from chassis.breakers import Breaker, BreakerRegistry
from chassis.bulkhead import Bulkhead, BulkheadFull
from chassis.context import request_id_var
from chassis.errors import ServiceError
from chassis.settings import HttpSettings, LiveSettings, RetrySettings, ServiceSettings
from chassis.tracing import TracedTransport
from chassis.transport import AiohttpTransport

__all__ = [
    "Downstream",
    "DownstreamError",
    "DownstreamUnavailable",
    "Fallback",
    "RenewableAuth",
    "UnroutableId",
    "path_segment",
]

T = TypeVar("T")
Fallback = Callable[["DownstreamUnavailable"], T]


class DownstreamError(ServiceError):
    """A downstream's answer that is neither a success nor its own failure: a 4xx, or a 503 naming
    a service behind it. Relayed with its status, detail and ``Retry-After``."""


class DownstreamUnavailable(ServiceError):
    """The downstream failed, timed out, or its circuit is open: 503 with ``Retry-After``."""

    status = 503
    title = "Service Unavailable"

    def __init__(self, downstream: str, reason: str, retry_after_s: int) -> None:
        super().__init__(
            f"{downstream} is unavailable ({reason})",
            headers={"Retry-After": str(retry_after_s)},
            extras={"downstream": downstream, "reason": reason},
        )
        self.downstream = downstream
        # "failure" | "timeout" | "short_circuited" | "rejected" (bulkhead full) | "deadline"
        self.reason = reason


class _Failed(Exception):
    """Marks a call the breaker must count as failed (5xx answer)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} from {response.request.url.host}")
        self.response = response


class RenewableAuth(httpx.Auth):
    """An ``httpx.Auth`` whose credentials come from another service (a token endpoint).
    ``Downstream`` awaits ``prepare()`` before its breaker and ``renew()`` after a 401, so getting
    the credentials is never counted against the callee's circuit or its time budget; the auth
    flow itself only adds what ``prepare()`` made ready."""

    async def prepare(self) -> None:
        """Make the credentials ready (fetch them if none are cached or they are about to expire)."""
        raise NotImplementedError

    async def renew(self, refused: httpx.Request) -> None:
        """The callee refused the credentials ``refused`` carried (key rotated, clock skew): get
        new ones, unless newer ones than those were fetched meanwhile."""
        raise NotImplementedError


class Downstream:
    """A named, guarded client for one downstream service."""

    def __init__(
        self,
        *,
        caller: str,
        callee: str,
        base_url: str,
        live: LiveSettings[ServiceSettings],
        registry: BreakerRegistry,
        breaker_redis: redis.Redis | None,
        tracer_provider: trace.TracerProvider | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = f"{caller}->{callee}"
        self.callee = callee
        self._live = live
        self._registry, self._breaker_redis = registry, breaker_redis
        self._auth: RenewableAuth | None = None
        settings = live.current
        self.breaker = registry.add(Breaker.create(self.name, settings.breaker, breaker_redis))
        self.bulkhead = Bulkhead(callee, settings.bulkhead)
        inner = transport or AiohttpTransport()
        self._client = _ServiceClient(
            base_url=base_url,
            transport=TracedTransport(inner, tracer_provider),
            timeout=_timeout(settings.http),
            headers={"user-agent": f"msa-chassis/{caller}"},
        )
        live.subscribe(self._on_settings)

    def _on_settings(self, old: ServiceSettings, new: ServiceSettings) -> None:
        self.breaker.apply(new.breaker)
        self.bulkhead.apply(new.bulkhead)
        self._client.timeout = _timeout(new.http)

    async def aclose(self) -> None:
        await self._client.aclose()

    def with_breaker(self, purpose: str) -> Downstream:
        """The same callee, connection pool and timeouts behind a breaker of its own named
        ``<caller>-><callee>/<purpose>`` (with its own metrics): calls of one kind failing or timing
        out (logins under a flood) then open their circuit only, never the callee's other one.
        It shares the original's client: close only the original (the app lifespan does)."""
        twin = copy.copy(self)
        twin.name = f"{self.name}/{purpose}"
        twin.breaker = self._registry.add(
            Breaker.create(twin.name, self._live.current.breaker, self._breaker_redis)
        )
        self._live.subscribe(lambda old, new: twin.breaker.apply(new.breaker))
        return twin

    def with_auth(self, auth: RenewableAuth) -> Downstream:
        """The same callee, pool and breaker, every call authenticated by ``auth`` (a service's own
        identity: ``chassis.auth.ServiceTokenAuth``). A call the callee answers 401 is sent once
        more with renewed credentials, so use it for idempotent calls only."""
        twin = copy.copy(self)
        twin._auth = auth
        return twin

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request. 2xx-4xx come back as responses, and so does a 503 that names another
        service behind this one (the callee is fine; what it needs is not: tripping the callee's
        breaker would cut off its healthy routes too). Other 5xx, timeouts, transport errors and an
        open circuit raise ``DownstreamUnavailable``."""
        headers = dict(kwargs.pop("headers", None) or {})
        if (request_id := request_id_var.get()) is not None:
            headers.setdefault("x-request-id", request_id)
        if self._auth is None:
            return await self._guarded(method, url, headers, kwargs)
        await self._auth.prepare()
        response = await self._guarded(method, url, headers, {**kwargs, "auth": self._auth})
        if response.status_code == 401:
            await self._auth.renew(response.request)
            response = await self._guarded(method, url, headers, {**kwargs, "auth": self._auth})
        return response

    async def _guarded(
        self, method: str, url: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> httpx.Response:
        settings = self._live.current
        budget = settings.http.timeout_s
        left = deadline.remaining_s()
        if left is not None:
            if left <= 0:  # the caller stopped waiting: no attempt, and no verdict on the callee
                raise DownstreamUnavailable(self.callee, "deadline", 1)
            budget = min(budget, left)
        metrics = self.breaker.metrics
        start = time.perf_counter()
        retries = settings.retry if _idempotent(method, headers) else None
        try:
            async with self.bulkhead.slot(budget):
                with self.breaker.guard():
                    response = await self._attempts(method, url, headers, kwargs, start + budget, retries)
        except BulkheadFull:
            metrics.record("rejected")
            raise DownstreamUnavailable(self.callee, "rejected", 1) from None
        except pybreaker.CircuitBreakerError:
            metrics.record("short_circuited")
            raise DownstreamUnavailable(
                self.callee, "short_circuited", self.breaker.retry_after_s()
            ) from None
        except httpx.TimeoutException:
            metrics.record("timeout", _ms(start))
            raise DownstreamUnavailable(self.callee, "timeout", self.breaker.retry_after_s()) from None
        except (httpx.TransportError, _Failed):
            metrics.record("failure", _ms(start))
            raise DownstreamUnavailable(self.callee, "failure", self.breaker.retry_after_s()) from None
        metrics.record(_verdict(response), _ms(start))
        return response

    async def _attempts(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        kwargs: dict[str, Any],
        ends: float,
        retries: RetrySettings | None,
    ) -> httpx.Response:
        """Attempts until one gives a verdict; all of them within ``ends`` (perf_counter). An
        idempotent call is retried on a refused connection or a 502/503/504 while ``retries``
        and the retry budget allow, after a full-jitter backoff that must end before ``ends``."""
        attempt = 1
        while True:
            left = ends - time.perf_counter()
            # the callee learns how long we will wait, so it can drop work no one awaits
            sent = {**headers, deadline.HEADER: str(max(int(left * 1000), 1))}
            try:
                async with asyncio.timeout(left):
                    response = await self._client.request(method, url, headers=sent, **kwargs)
            except TimeoutError as exc:
                raise httpx.TimeoutException(f"no answer within {left:.3f}s") from exc
            except (httpx.ConnectError, httpx.RemoteProtocolError):
                # never connected, or the connection was dropped unanswered: safe to resend
                backoff = self._retry_backoff(retries, attempt, ends)
                if backoff is None:
                    raise
            else:
                failed = response.status_code >= 500 and not _names_another_service(response, self.callee)
                if not failed:
                    return response
                backoff = (
                    self._retry_backoff(retries, attempt, ends)
                    if response.status_code in _RETRIED_STATUSES
                    else None
                )
                if backoff is None:
                    raise _Failed(response)
            await asyncio.sleep(backoff)
            attempt += 1

    def _retry_backoff(self, retries: RetrySettings | None, attempt: int, ends: float) -> float | None:
        """The pause before another attempt, or None: not idempotent, attempts used up, over the
        retry budget, or the pause would end past the call's budget."""
        if retries is None or attempt >= retries.max_attempts:
            return None
        metrics = self.breaker.metrics
        counts = metrics.counts()
        calls = counts["success"] + counts["bad_request"] + counts["failure"] + counts["timeout"]
        if counts["retried"] >= retries.budget_ratio * calls + retries.min_per_s * metrics.window_s:
            return None
        cap = min(retries.backoff_max_s, retries.backoff_base_s * 2 ** (attempt - 1))
        backoff = random.uniform(0, cap)  # "full jitter": spreads the retries of many callers
        if time.perf_counter() + backoff + _MIN_ATTEMPT_S >= ends:
            return None  # an attempt with next to no time left would start work no one awaits
        metrics.record("retried")
        return backoff

    async def json(
        self,
        method: str,
        url: str,
        *,
        fallback: Fallback[T] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Request and decode JSON. A 4xx (or a 503 about a service behind this one) is relayed as
        ``DownstreamError``; when the downstream itself is unavailable, ``fallback(error)`` answers
        instead, if given."""
        try:
            response = await self.request(method, url, **kwargs)
        except DownstreamUnavailable as exc:
            if fallback is None:
                raise
            try:
                value = fallback(exc)
            except Exception:
                self.breaker.metrics.record("fallback_failure")
                raise
            self.breaker.metrics.record("fallback_success")
            return value
        if response.status_code >= 400:
            raise _relay(response)
        return response.json() if response.content else None

    async def get_json(self, url: str, *, fallback: Fallback[T] | None = None, **kwargs: Any) -> Any:
        return await self.json("GET", url, fallback=fallback, **kwargs)


_RELAYED_HEADERS = ("Retry-After", "WWW-Authenticate")
_RETRIED_STATUSES = frozenset({502, 503, 504})
_MIN_ATTEMPT_S = 0.05  # a retry must leave its attempt at least this long
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _verdict(response: httpx.Response) -> str:
    """The event of an answer the breaker counts as a success: a 4xx is the caller's request refused
    (``bad_request``), no failure of the callee. Except 408 and 429: "not now", said of a request
    that may well be fine (the callee is slow or over a limit), so they are no caller's fault."""
    status = response.status_code
    return "bad_request" if 400 <= status < 500 and status not in (408, 429) else "success"


def _idempotent(method: str, headers: Mapping[str, str]) -> bool:
    """Safe to send twice: a read, or a write the callee deduplicates by its Idempotency-Key."""
    return method.upper() in _SAFE_METHODS or any(name.lower() == "idempotency-key" for name in headers)


def _problem(response: httpx.Response) -> Mapping[str, Any]:
    if not response.headers.get("content-type", "").startswith(
        ("application/problem+json", "application/json")
    ):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def _names_another_service(response: httpx.Response, callee: str) -> bool:
    """A chassis 503 problem about one of the callee's own downstreams (``DownstreamUnavailable``)."""
    downstream = _problem(response).get("downstream") if response.status_code == 503 else None
    return isinstance(downstream, str) and downstream != callee


def _relay(response: httpx.Response) -> DownstreamError:
    body = _problem(response)
    detail = body.get("detail") or body.get("title")
    headers = {name: response.headers[name] for name in _RELAYED_HEADERS if name in response.headers}
    # The title tells apart answers of one status (409 "Request in progress", retry, from 409
    # "Idempotency-Key reused", do not): the client gets it as the callee gave it.
    title = body.get("title") if isinstance(body.get("title"), str) else None
    return DownstreamError(detail, status=response.status_code, title=title, headers=headers)


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _ServiceClient(httpx.AsyncClient):
    """Keeps no cookies: between services, a ``Set-Cookie`` in one answer must never ride along on
    the next call, made for another user (and storing them cost 4% of a call's CPU).

    Builds a call to a path (``"/stock"``, with or without ``params``) on one parse of the whole
    URL, where httpx parses three times (the path, the path joined to ``base_url``, the query
    merged in): 55 instead of 81 us of CPU for a path, 76 instead of 132 with params (in-process).
    The request is the one httpx builds (a test compares them). httpx builds the rest: an absolute
    URL or a URL object, ``//host``, a path with a fragment, params on a path that has a query,
    params set on the client, a base URL with credentials, a query or a fragment."""

    _base: tuple[httpx.URL, str | None] | None = None  # base_url, and its text ending in "/" if plain

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        return None

    def build_request(  # httpx's own keywords pass through as they are
        self, method: str, url: httpx.URL | str, *, params: Any = None, **kwargs: Any
    ) -> httpx.Request:
        if self._base is None or self._base[0] is not self.base_url:
            self._base = (self.base_url, _plain_prefix(self.base_url))
        prefix = self._base[1]
        if (
            prefix is None
            or not isinstance(url, str)
            or not url.startswith("/")
            or url.startswith("//")
            or "#" in url  # httpx drops a path's fragment before it joins the path to base_url
            or self.params
            or (params is not None and "?" in url)
        ):
            return super().build_request(method, url, params=params, **kwargs)
        query = str(httpx.QueryParams(params)) if params else ""
        whole = prefix + url[1:] + (f"?{query}" if query else "")
        return super().build_request(method, httpx.URL(whole), **kwargs)


def _plain_prefix(base_url: httpx.URL) -> str | None:
    """``scheme://host:port/path/`` of an absolute base URL with no credentials, query or fragment,
    else None."""
    if base_url.is_relative_url or base_url.userinfo or base_url.query or base_url.fragment:
        return None
    if not base_url.raw_path.endswith(b"/"):
        return None
    return f"{base_url.scheme}://{base_url.netloc.decode('ascii')}{base_url.raw_path.decode('ascii')}"


def _timeout(settings: HttpSettings) -> httpx.Timeout:
    return httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


class UnroutableId(ServiceError):
    """An id that cannot be one path segment (empty, or holding "/"): no resource has it."""

    status = 404
    title = "Not Found"


def path_segment(value: str) -> str:
    """``value`` as one percent-encoded path segment, for every downstream URL that interpolates
    an id: ``f"/orders/{path_segment(order_id)}"``. ``?``, ``#``, ``%`` and non-ASCII are encoded,
    and so are the dots of ``.`` and ``..``, which the client would otherwise resolve as dot
    segments (``/orders/.`` is sent as ``/orders``). A ``/`` cannot be encoded away (an ASGI callee
    routes on the decoded path, so ``%2F`` splits the segment there), and an empty value would be
    another route: both are refused with 404. Routes validate ids first (``chassis.params``); this
    makes sure no value that slipped through can change which route is called."""
    if not value or "/" in value:
        raise UnroutableId("No resource has this id.")
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in {".", ".."} else encoded
