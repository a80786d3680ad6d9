"""boto3 access for the hooks: availability check, cached clients, regions read from ARNs and URLs.

boto3 is the optional ``aws`` extra, so nothing here imports it at module level: ``import
mongodb_session_manager`` must work without it. Clients are cached because creating one costs far
more than the call it makes.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any

from ..fork_safety import renew_in_child

#: What to tell users who build a hook without boto3.
INSTALL_HINT = 'install the "aws" extra: pip install "mongodb-session-manager[aws]"'

_CLIENTS_LOCK = threading.Lock()
_clients: dict[tuple[str, str | None, str | None], Any] = {}


# A forked child builds its own clients: the parent's share their connections with it.
renew_in_child(sys.modules[__name__], "_CLIENTS_LOCK", threading.Lock)
renew_in_child(sys.modules[__name__], "_clients", dict)


def boto3_available() -> bool:
    """True when ``import boto3`` succeeds (an installed-but-broken boto3 counts as missing)."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        return False
    return True


def require_boto3(what: str) -> None:
    """Fail when the hook is built, with the fix, rather than on the first send."""
    if not boto3_available():
        raise ImportError(f"{what} needs boto3, which is not installed; {INSTALL_HINT}")


def _client_config() -> Any:
    from botocore.config import Config

    # Short timeouts and few retries: a hung endpoint must not pin the small pool for minutes.
    return Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})


def get_client(service: str, region: str | None, endpoint_url: str | None = None) -> Any:
    """The cached boto3 client for ``(service, region, endpoint_url)``.

    Low-level boto3 clients are thread-safe once built; building them from a session is not, hence
    the lock around creation only.
    """
    key = (service, region, endpoint_url)
    client = _clients.get(key)
    if client is not None:
        return client
    with _CLIENTS_LOCK:
        client = _clients.get(key)
        if client is None:
            import boto3

            client = boto3.session.Session().client(
                service, region_name=region, endpoint_url=endpoint_url, config=_client_config()
            )
            _clients[key] = client
    return client


def clear_clients() -> None:
    with _CLIENTS_LOCK:
        _clients.clear()


def default_region() -> str | None:
    """The region boto3 would pick from the environment / config files, if any."""
    import boto3

    return boto3.session.Session().region_name


def resolve_region(explicit: str | None, hint: str | None, what: str) -> str:
    """``explicit`` if given, else the region written in the ARN / URL, else boto3's default."""
    region = explicit or hint or default_region()
    if not region:
        raise ValueError(f"{what}: no AWS region; pass region=... or set AWS_DEFAULT_REGION")
    return region


_ARN_REGION = re.compile(r"^arn:[^:]+:[^:]+:([a-z0-9-]+):")
_URL_REGIONS = (
    re.compile(r"^https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com"),
    re.compile(r"^https?://([a-z0-9-]+)\.queue\.amazonaws\.com"),
    re.compile(r"^https?://[^./]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com"),
)


def region_from_arn(arn: str) -> str | None:
    match = _ARN_REGION.match(arn)
    return match.group(1) if match else None


def region_from_url(url: str) -> str | None:
    for pattern in _URL_REGIONS:
        match = pattern.match(url)
        if match:
            return match.group(1)
    return None
