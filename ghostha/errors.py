"""The error tree ghostha raises, and the translation of AWS's errors into what / where / hint.

Every error a user can meet is a GhosthaError: one line saying what went wrong (and where), an optional hint
saying how to fix it, and the exit code the command line contract gives it. Nothing here prints.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class GhosthaError(Exception):
    """Something the user must hear about: a message, an optional hint, an exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or []


class ConfigError(GhosthaError):
    """The config file is missing, unreadable or invalid."""

    exit_code = EXIT_USAGE


class PreflightError(GhosthaError):
    """The account is not in a state `up` can build on; nothing was created."""

    exit_code = EXIT_USAGE


class OwnershipError(GhosthaError):
    """A resource of the stack's name exists but ghostha did not create it."""

    exit_code = EXIT_USAGE


class AwsError(GhosthaError):
    """An AWS call failed."""

    exit_code = EXIT_FAILED


class CredentialsError(GhosthaError):
    """No credentials or no region: nothing can be asked of AWS."""

    exit_code = EXIT_USAGE


class WaitTimeout(GhosthaError):
    """A wait ran past its deadline."""

    exit_code = EXIT_TIMEOUT


class RolloutFailed(GhosthaError):
    """The deployment this run started failed or was rolled back."""

    exit_code = EXIT_FAILED


class Aborted(GhosthaError):
    """The user declined a confirmation."""

    exit_code = EXIT_FAILED


class UsageError(GhosthaError):
    """The command line cannot be run as given (a bad option, no terminal to ask on)."""

    exit_code = EXIT_USAGE


class Interrupted(GhosthaError):
    """Ctrl-C: the run stopped where it was; running the command again resumes it."""

    exit_code = EXIT_INTERRUPTED


class LockedError(GhosthaError):
    """Another ghostha run holds the stack's lock."""

    exit_code = EXIT_FAILED


# Hints for AWS error codes and messages that users meet; matched in this order.
_HINTS: list[tuple[str, str]] = [
    (
        "You cannot specify an IAM role for services that require a service linked role",
        "set service.role to null in the config: the service-linked role AWSServiceRoleForECS is used instead",
    ),
    (
        "Unable to assume the service linked role",
        "create it once with `aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com`",
    ),
    (
        "Invalid IAM Instance Profile",
        "a new instance profile takes a few seconds to be usable; if it persists, check cluster.instance_profile",
    ),
    ("AccessDenied", "your credentials lack the IAM permission for this action; grant it and run again"),
    (
        "UnauthorizedOperation",
        "your credentials lack the IAM permission for this action; grant it and run again",
    ),
    ("ExpiredToken", "your session expired: refresh your credentials (e.g. `aws sso login`) and run again"),
    (
        "Throttling",
        "AWS is throttling requests; wait a minute and run again (the run resumes where it stopped)",
    ),
]


def hint_for(code: str, message: str) -> str | None:
    for needle, hint in _HINTS:
        if needle in code or needle in message:
            return hint
    return None


def from_boto(exc: Exception, operation: str | None = None) -> GhosthaError:
    """Translate a botocore exception into a GhosthaError (one line, with the operation and AWS's words)."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )
    from botocore.parsers import ResponseParserError

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CredentialsError(
            "no AWS credentials found",
            hint="configure a profile (`aws configure` or --profile NAME), or use the local sandbox "
            "(`ghostha sandbox start`)",
        )
    if isinstance(exc, NoRegionError):
        return CredentialsError(
            "no AWS region set", hint="set `region:` in the config, pass --region, or set AWS_DEFAULT_REGION"
        )
    if isinstance(exc, ProfileNotFound):
        return ConfigError(
            f"AWS profile {exc.kwargs.get('profile', '')!r} not found",
            hint="list your profiles with `aws configure list-profiles`, or drop --profile to use the default chain",
        )
    if isinstance(exc, EndpointConnectionError | ConnectionError):
        text = one_line(str(exc))
        hint = "check the network (and any proxy settings)" if ".amazonaws.com" in text else _unreachable_hint()
        return AwsError(f"cannot reach the AWS endpoint: {text}", hint=hint)
    op = operation or getattr(exc, "operation_name", "") or "AWS call"
    if isinstance(exc, ResponseParserError):
        return not_aws(op)
    if isinstance(exc, ClientError):
        err: Any = exc.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        message = one_line(str(err.get("Message", ""))) or code
        if looks_like_html(code) or looks_like_html(message) or (code.isdigit() and not err.get("Message")):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return not_aws(op, status)
        return AwsError(f"{op} failed: {code}: {message}", hint=hint_for(code, message))
    return AwsError(f"{op} failed: {type(exc).__name__}: {one_line(str(exc))}")


def _unreachable_hint() -> str:
    """Where a sandbox runs now, when one does: a restarted sandbox has a new port, and an old config the old."""
    from ghostha.sandbox import control

    try:
        boxes = control.running(control.default_state_dir())
    except Exception:  # a hint must never turn the one line into a crash (a foreign state file, say)
        boxes = []
    if not boxes:
        return "check the network, or the endpoint_url (is the sandbox running? `ghostha sandbox start`)"
    where = "; ".join(f"{b.endpoint}" + (f" (config {b.config})" if b.config else "") for b in boxes)
    return f"a sandbox runs at {where}: use its config, or set endpoint_url / --endpoint-url to its endpoint"


def not_aws(operation: str, status: Any = None) -> AwsError:
    """The endpoint answered, but not as AWS does (a web page, an empty body): one line, not the page."""
    answer = f" (HTTP {status})" if status else ""
    return AwsError(
        f"{operation} failed: the endpoint answered with something that is not an AWS response{answer}",
        hint="check endpoint_url / --endpoint-url: it must be an AWS API endpoint (or a running sandbox's)",
    )


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(("<!doctype", "<html", "<head", "<body", "<?xml")) or "<html" in head


def one_line(text: str, limit: int = 2000) -> str:
    """Text from outside (AWS, files) as one line: whitespace runs collapsed, very long text cut with a note."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = f"{flat[:limit]}… ({len(flat) - limit} more characters)"
    return flat


def error_code(exc: Exception) -> str:
    """The AWS error code of a ClientError, or ''."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
