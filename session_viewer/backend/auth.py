"""Password checks, password strength, and who a client is.

Passwords arrive in headers (``X-Backend-Password`` for everything, ``X-Session-Password`` for one
session), never in URLs, which end up in logs and browser history. Comparison is constant-time
over SHA-256 digests so neither content nor length leaks through timing. Failed attempts are
counted per client (see :func:`client_key` and :mod:`.lockout`): forwarded headers are believed
only from proxies configured in ``TRUSTED_PROXIES_STR``, so one client can neither lock out the
others behind the same proxy (when the proxy is configured) nor rotate addresses to guess on.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

BACKEND_PASSWORD_HEADER = "X-Backend-Password"
SESSION_PASSWORD_HEADER = "X-Session-Password"
#: A browser that has logged in before carries this; its failures are counted on its own.
DEVICE_HEADER = "X-Viewer-Device"


def passwords_match(given: str | None, expected: str | None) -> bool:
    """Constant-time equality; an empty expected password never matches anything."""
    if not given or not expected:
        return False
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest(),
    )


def generate_password() -> str:
    """A random password for a server started without ``BACKEND_PASSWORD`` (never a fixed default)."""
    return secrets.token_urlsafe(18)


#: Shortest configured ``BACKEND_PASSWORD`` accepted without ``ALLOW_WEAK_PASSWORD``.
MIN_PASSWORD_LENGTH = 12
#: Passwords of 12+ characters that top the public breach lists, and shapes of them: refused outright.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012", "1234567890123", "12345678901234", "123456789123", "1234567890qwerty",
        "qwertyuiop12", "qwertyuiopasdf", "qwertyuiopasdfgh", "1q2w3e4r5t6y", "1q2w3e4r5t6y7u",
        "1qaz2wsx3edc", "1qaz2wsx3edc4rfv", "zaq12wsxcde3", "passwordpassword", "password1234",
        "password12345", "password123456", "passw0rd1234", "administrator", "administrator1",
        "changemechangeme", "changeme1234", "letmein12345", "welcome12345", "iloveyou1234",
        "trustno1trustno1", "abcdefghijkl", "abcdefghijklmnop", "abc123abc123", "aaaaaaaaaaaa",
        "000000000000", "111111111111", "123123123123", "112233445566", "987654321000",
        "sessionviewer", "session-viewer", "session_viewer", "mongodbmongodb", "secretsecret",
        "superadmin123", "qazwsxedcrfv", "asdfghjklqwe", "football1234", "baseball1234",
        "sunshine1234", "princess1234", "monkey123456", "dragon123456", "master123456",
    }
)  # fmt: skip


def password_problem(password: str) -> str | None:
    """Why ``password`` is too weak to protect every transcript, or None when it is acceptable.

    The bar is deliberately simple and explainable: at least 12 characters, not one of the most
    common passwords (compared without case, spaces, dashes and underscores), and not a single
    character or a short pattern repeated (``abcabcabcabc``).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"is shorter than {MIN_PASSWORD_LENGTH} characters"
    folded = "".join(ch for ch in password.lower() if ch not in " -_")
    if folded in COMMON_PASSWORDS or password.lower() in COMMON_PASSWORDS:
        return "is one of the most common passwords"
    if len(set(password)) < 4 or any(folded == folded[:n] * (len(folded) // n) for n in range(1, 4)):
        return "is a repeated pattern"
    return None


# ---- who the client is ------------------------------------------------------------------------------

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: IPv6 clients are counted per /64: one host usually owns a whole /64 and could rotate inside it.
IPV6_CLIENT_PREFIX = 64


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: list[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_key(peer: str | None, forwarded_for: str | None, trusted: list[IPNetwork]) -> str:
    """The client the lockout counts failures for.

    The peer address, unless the peer is a configured trusted proxy: then the right-most address of
    ``X-Forwarded-For`` that is not itself a trusted proxy (everything left of it was written by
    the client and proves nothing). With no trusted proxies, forwarded headers are ignored, so a
    client cannot pick a fresh address per guess. IPv6 addresses count per /64.
    """
    address = _parse_ip(peer or "")
    if address is not None and trusted and _trusted(address, trusted) and forwarded_for:
        for hop in reversed(forwarded_for.split(",")):
            candidate = _parse_ip(hop)
            if candidate is None:
                break  # garbage from an untrusted hop: stop at the last proxy we trust
            address = candidate
            if not _trusted(candidate, trusted):
                break
    if address is None:
        return f"peer:{(peer or 'unknown')[:64]}"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


# ---- devices that logged in before ------------------------------------------------------------------


def device_key(password: str) -> bytes:
    """The key device tokens are signed with: derived from the password, so changing it revokes them."""
    return hashlib.sha256(b"session-viewer-device\0" + password.encode("utf-8", "surrogatepass")).digest()


def _signature(key: bytes, device_id: str) -> str:
    return hmac.new(key, device_id.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def new_device_token(key: bytes) -> str:
    """``<id>.<signature>``, handed to a browser after a successful login (nothing is stored server-side).

    Why: counting failures per address alone lets one client behind a shared address (an office
    NAT, a proxy that is not ours) lock everyone there out. A request with a valid token is judged
    by that device's own failures, so reviewers who logged in before keep working while a guesser
    on the same address is locked out. Only a correct password earns a token, so a guesser has none.
    """
    device_id = secrets.token_hex(12)
    return f"{device_id}.{_signature(key, device_id)}"


def verify_device_token(key: bytes, token: str | None) -> str | None:
    """The device id of a genuine token, else None (forged, malformed or from another password)."""
    if not token or len(token) > 80 or token.count(".") != 1:
        return None
    device_id, signature = token.split(".")
    if len(device_id) != 24 or any(ch not in "0123456789abcdef" for ch in device_id):
        return None
    return device_id if hmac.compare_digest(signature, _signature(key, device_id)) else None
