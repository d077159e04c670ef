"""What a non-AWS endpoint may advise about talking to it: how often to poll, where the blog answers.

AWS has no such thing, so against AWS nothing here runs. An `endpoint_url` that stands in for AWS (the sandbox)
may answer `GET <endpoint>/_ghostha/runtime` with JSON such as `{"poll_seconds": 0.5, "site_url": "http://…"}`:
its clock may run faster than AWS's (the sandbox's runs 30 times faster, so AWS's 5 s poll would be 2.5 simulated
minutes), and its load balancer may answer somewhere its DNS name does not resolve to (the sandbox's ALB
stand-in listens on loopback). Neither value can be read from the account through the AWS API, which is why
`ghostha init` and `ghostha sandbox start` leave both out of the config they write. A value the config sets
always wins over the advice; an endpoint that does not answer, or answers anything else, advises nothing.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from ghostha.config import ADVISABLE, SCHEMA

if TYPE_CHECKING:
    from ghostha.config import Config

PATH = "/_ghostha/runtime"
TIMEOUT_SECONDS = 2.0


def fetch(endpoint: str, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """The endpoint's advice for the ADVISABLE keys, each checked as the config checks it; {} when there is none."""
    import http.client
    import urllib.request

    # no proxy: the endpoint is the caller's own stand-in for AWS, typically on loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(endpoint.rstrip("/") + PATH, timeout=timeout) as resp:
            if resp.status != 200:
                return {}
            data = json.loads(resp.read(65536))
    except (OSError, ValueError, http.client.HTTPException):  # refused, timed out, an error status, not JSON
        return {}
    if not isinstance(data, dict):
        return {}
    advice: dict[str, Any] = {}
    for key in ADVISABLE:
        value = data.get(key)
        spec = SCHEMA[key]
        if value is None or isinstance(value, bool) or not isinstance(value, spec.kind):
            continue
        if spec.check is None or spec.check(value) is None:
            advice[key] = value
    return advice


def apply(cfg: Config, endpoint: str | None) -> Config:
    """`cfg` with the endpoint's advice for the advisable keys the config file leaves out."""
    from ghostha.aws import endpoint_problem

    if not endpoint or not cfg.advisable or endpoint_problem(endpoint):
        return cfg
    got = {k: v for k, v in fetch(endpoint).items() if k in cfg.advisable}
    if "poll_seconds" in got:
        got["poll_seconds"] = float(got["poll_seconds"])
    return dataclasses.replace(cfg, **got) if got else cfg
