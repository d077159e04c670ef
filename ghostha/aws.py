"""The one place that builds boto3 sessions and clients.

Profile, region and endpoint come from the command line, then the config, then AWS's usual chain (the endpoint
also from AWS_ENDPOINT_URL); both are checked before any call (an unknown region or a malformed URL is a config
error). Retries use botocore's `standard` mode (exponential backoff capped at 20 s, throttling and transient
errors retried) with `max_attempts` from the config (attempts per call, the first included; default 10: with a
third of all calls throttled, one call in 59,000 still fails). That mode's retry quota (a token bucket per
client: 500 tokens, 5 per throttled retry) drains under such throttling and runs dry after about 1,200 calls, after
which throttles are no longer retried; so a client is renewed (with a full quota) every `RENEW_AFTER` uses. A loopback
endpoint (a local stand-in for AWS such as ghostha's sandbox) gets placeholder credentials when none are set,
since it cannot check real ones anyway; nothing else here knows about the sandbox.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ghostha import __version__

if TYPE_CHECKING:
    import boto3


def endpoint_problem(url: str) -> str | None:
    """Why `url` cannot be an AWS endpoint (a complaint starting "must …" / "is …"), or None."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError as exc:
        return f"is not a valid URL ({exc}), e.g. http://127.0.0.1:4566"
    if parsed.scheme not in ("http", "https"):
        return f"must start with http:// or https://, got {url!r}"
    if not parsed.hostname:
        return f"has no host name, got {url!r}"
    if port == 0:
        return f"has port 0, got {url!r}"
    if any(c.isspace() or not c.isprintable() for c in url):
        return f"must not contain spaces or control characters, got {url!r}"
    return None


def known_regions() -> list[str]:
    """Every region botocore's endpoint data knows, over all partitions."""
    session = _botocore_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        for service in ("ecs", "ec2"):
            regions.update(session.get_available_regions(service, partition_name=partition))
    return sorted(regions)


def region_problem(region: str) -> tuple[str, str] | None:
    """(complaint, hint) when `region` is not a region botocore knows, else None."""
    if not region.strip():
        return "the AWS region is empty", "pass a region such as us-east-1, or drop --region to use the config's"
    regions = known_regions()
    if region in regions:
        return None
    import difflib

    close = difflib.get_close_matches(region, regions, n=1)
    guess = f"did you mean {close[0]}?" if close else "regions look like us-east-1 or eu-west-1."
    return f"unknown AWS region {region!r}", f"{guess} (a region newer than your botocore needs `pip install -U boto3`)"


def is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


RENEW_AFTER = 200  # uses of one client before it is built again, with a full retry quota (see above)

_loader: Any = None
_loader_lock = threading.Lock()


def _botocore_session() -> Any:
    """A fresh botocore session (its own credentials and config) sharing one process-wide model loader:
    parsing the service models is the slow part of making clients."""
    import botocore.session

    global _loader
    session = botocore.session.get_session()
    with _loader_lock:
        if _loader is None:
            _loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _loader)
    return session


@dataclass
class Aws:
    """Lazily built boto3 session and cached clients, shared by one command run (thread-safe)."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = 10
    trace: Callable[[AwsCall], None] | None = None  # -v: told of every call as it completes
    trace_retries: bool = False  # -vv: told of every retry botocore makes, too
    _session: boto3.Session | None = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _uses: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def endpoint(self) -> str | None:
        url = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        if url is not None and (problem := endpoint_problem(url)):
            from ghostha.errors import ConfigError

            raise ConfigError(f"the AWS endpoint URL {problem}", hint="pass a URL like http://127.0.0.1:4566")
        return url

    def session(self) -> boto3.Session:
        import boto3

        if self._session is None:
            kwargs: dict[str, Any] = {}
            if self.profile:
                kwargs["profile_name"] = self.profile
            if self.region:
                kwargs["region_name"] = self.region
            session = boto3.Session(botocore_session=_botocore_session(), **kwargs)
            region = session.region_name
            if region is not None and (problem := region_problem(region)):
                from ghostha.errors import ConfigError

                raise ConfigError(problem[0], hint=problem[1])
            if is_loopback(self.endpoint) and session.get_credentials() is None:
                session = boto3.Session(
                    botocore_session=_botocore_session(),
                    aws_access_key_id="ghostha-local",
                    aws_secret_access_key="ghostha-local",
                    region_name=session.region_name or self.region or "us-east-1",
                )
            self._session = session
        return self._session

    def client(self, service: str) -> Any:
        from botocore.config import Config as BotoConfig

        with self._lock:
            self._uses[service] = self._uses.get(service, 0) + 1
            if service not in self._clients or self._uses[service] > RENEW_AFTER:
                self._uses[service] = 1
                cfg = BotoConfig(
                    retries={"mode": "standard", "total_max_attempts": self.max_attempts},
                    user_agent_extra=f"ghostha/{__version__}",
                    max_pool_connections=20,
                )
                self._clients[service] = self.session().client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint,
                    config=cfg,
                )
                self._clients[service].meta.events.register("after-call", _refuse_non_aws)
                if self.trace is not None:
                    _trace_calls(self._clients[service], service, self.trace, self.trace_retries)
            return self._clients[service]

    @property
    def region_name(self) -> str | None:
        return self.session().region_name


def _refuse_non_aws(http_response: Any, model: Any, **_: Any) -> None:
    """A 2xx answer that is a web page (an endpoint_url pointing at a web server, such as the sandbox's ALB
    stand-in) parses into an empty result: refuse it here, in one line, before anything reads the result."""
    from ghostha.errors import not_aws

    status = int(getattr(http_response, "status_code", 0) or 0)
    if not 200 <= status < 300:
        return  # error answers are judged where the ClientError is mapped (errors.py)
    headers = getattr(http_response, "headers", None) or {}
    ctype = str(headers.get("Content-Type") or headers.get("content-type") or "").lower()
    head = bytes(getattr(http_response, "content", b"") or b"")[:512].decode("utf-8", "replace").lstrip().lower()
    if "html" in ctype or head.startswith(("<!doctype html", "<html")):
        raise not_aws(str(getattr(model, "name", "") or "AWS call"), status)


# --- -v / -vv: every call as it completes, and every retry ------------------------------------------------


@dataclass(frozen=True)
class AwsCall:
    """One AWS call as it completed (or one retry botocore is about to make, when `retry` is set)."""

    service: str
    operation: str
    params: str  # the key parameters, short
    seconds: float  # from the call to its answer, retries included; for a retry: the wait before it
    request_id: str | None = None
    error: str | None = None  # AWS's error code, or the exception, when the call failed
    retries: int = 0
    retry: int = 0  # for a retry: the number of the attempt about to be made
    max_attempts: int = 0


_SHORT = 64


def _short(value: Any) -> str | None:
    """A parameter value as a short text; None when it is a structure (shown as `…`)."""
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, str):
        text = value.split(":", 5)[5] if value.startswith("arn:") and value.count(":") >= 5 else value
        return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"  # an ARN's resource part tells it apart
    return None


def key_params(params: dict[str, Any]) -> str:
    """The parameters a reader needs to tell calls apart: scalars and short lists of scalars in full (long
    strings cut), structures as `…` (they may hold user data or environment variables)."""
    parts: list[str] = []
    for key, value in params.items():
        text = _short(value)
        if text is None and isinstance(value, list) and all(_short(v) is not None for v in value):
            shown = [str(_short(v)) for v in value[:3]]
            more = f", +{len(value) - 3}" if len(value) > 3 else ""
            text = "[" + ", ".join(shown) + more + "]"
        parts.append(f"{key}={text if text is not None else '…'}")
    return " ".join(parts)


def _request_id(parsed: Any, http: Any) -> str | None:
    meta = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
    rid = meta.get("RequestId")
    if not rid and http is not None:
        headers = getattr(http, "headers", {}) or {}
        rid = headers.get("x-amzn-requestid") or headers.get("x-amz-request-id")
    return str(rid) if rid else None


def _trace_calls(client: Any, service: str, trace: Callable[[AwsCall], None], retries: bool) -> None:
    """Hook botocore's events of one client: the parameters as given, the answer, and (when `retries`) each
    new attempt after a failed one. Everything is kept in the call's own context, so threads do not mix."""
    events = client.meta.events

    def started(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["ghostha_trace"] = {"params": key_params(params), "start": time.monotonic()}

    def emit(event_name: str, state: dict[str, Any], since: str = "start", **fields: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        trace(AwsCall(service, operation, state["params"], time.monotonic() - state[since], **fields))

    def done(http_response: Any, parsed: Any, context: dict[str, Any], event_name: str, **_: Any) -> None:
        state = context.get("ghostha_trace") or {"params": "", "start": time.monotonic()}
        meta = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
        error = None
        if getattr(http_response, "status_code", 200) >= 300:
            error = str((parsed.get("Error") or {}).get("Code") or f"HTTP {http_response.status_code}")
        retries = int(meta.get("RetryAttempts") or 0)
        emit(event_name, state, request_id=_request_id(parsed, http_response), error=error, retries=retries)

    def failed(exception: Exception, context: dict[str, Any], event_name: str, **_: Any) -> None:
        state = context.get("ghostha_trace") or {"params": "", "start": time.monotonic()}
        retries = max(0, int((context.get("retries") or {}).get("attempt", 1)) - 1)
        emit(event_name, state, error=f"{type(exception).__name__}: {exception}", retries=retries)

    def answered(context: dict[str, Any], exception: Any, response_dict: Any, **_: Any) -> None:
        state = context.get("ghostha_trace")
        if state is None:
            return
        status = (response_dict or {}).get("status_code", 0)
        if exception is not None:
            state["last"] = f"{type(exception).__name__}"
        elif status >= 300:
            code = _error_code_in((response_dict or {}).get("body", b""))
            state["last"] = f"HTTP {status} {code}" if code else f"HTTP {status}"
        else:
            state["last"] = None
        state["answered"] = time.monotonic()

    def sending(request: Any, event_name: str, **_: Any) -> None:
        context = getattr(request, "context", {}) or {}
        state = context.get("ghostha_trace")
        retries = context.get("retries") or {}
        attempt = int(retries.get("attempt", 1))
        if state is None or attempt <= 1:
            return
        max_attempts = int(retries.get("max", 0))
        emit(event_name, state, "answered", error=state.get("last"), retry=attempt, max_attempts=max_attempts)

    events.register("before-parameter-build", started)
    events.register("after-call", done)
    events.register("after-call-error", failed)
    if retries:
        events.register("response-received", answered)
        events.register("before-send", sending)


def _error_code_in(body: Any) -> str | None:
    """AWS's error code in an error response body (JSON `__type`/`code` or XML `<Code>`), if any."""
    import re

    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    json_code = r'"(?:__type|code)"\s*:\s*"(?:[^"#]*#)?([^"]+)"'
    match = re.search(json_code, text) or re.search(r"<Code>([^<]+)</Code>", text)
    return match.group(1) if match else None
