"""The one place that builds boto3 sessions and clients.

Profile, region and endpoint come from the command line, then the config, then AWS's usual chain (the endpoint
also from AWS_ENDPOINT_URL). Retries use botocore's `standard` mode; the user agent names ghostha. A loopback
endpoint (a local stand-in for AWS such as ghostha's sandbox) gets placeholder credentials when none are set,
since it cannot check real ones anyway; nothing else here knows about the sandbox.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ghostha import __version__

if TYPE_CHECKING:
    import boto3


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
    max_attempts: int = 5
    _session: boto3.Session | None = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def endpoint(self) -> str | None:
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None

    def session(self) -> boto3.Session:
        import boto3

        if self._session is None:
            kwargs: dict[str, Any] = {}
            if self.profile:
                kwargs["profile_name"] = self.profile
            if self.region:
                kwargs["region_name"] = self.region
            session = boto3.Session(botocore_session=_botocore_session(), **kwargs)
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
            if service not in self._clients:
                cfg = BotoConfig(
                    retries={"mode": "standard", "max_attempts": self.max_attempts},
                    user_agent_extra=f"ghostha/{__version__}",
                    max_pool_connections=20,
                )
                self._clients[service] = self.session().client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint,
                    config=cfg,
                )
            return self._clients[service]

    @property
    def region_name(self) -> str | None:
        return self.session().region_name
