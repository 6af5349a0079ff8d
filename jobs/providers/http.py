"""``requests`` calls shared by the real clients: transport failures become provider errors.

``download_result`` fetches a result file a provider points at (a Kling video URL): such a URL
comes from outside, so it is held to plain public HTTPS, a size cap and a deadline.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from genbot.streaming import BodyTimedOut, BodyTooLarge, StreamError, read_body, time_left

from .base import (
    MalformedResponse,
    ProviderTimeout,
    ProviderUnavailable,
    ResultExpired,
    ResultTooLarge,
    UnsafeResultURL,
)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}


_sessions = threading.local()


def shared_session() -> requests.Session:
    """This thread's ``requests`` session for the providers' APIs: connections stay open between calls.

    A provider object lives for one job or one poll; with a session of its own each video poll
    opened (and against the real APIs, TLS-handshook) a new connection. One session per thread
    (``requests`` does not promise a session is safe across threads) and per process (a forked
    child must not write to its parent's sockets).
    """
    owner, session = getattr(_sessions, "owned", (None, None))
    if owner != os.getpid():
        session = requests.Session()
        _sessions.owned = (os.getpid(), session)
    return session


def send(session: requests.Session, method: str, url: str, *, timeout: float, **kwargs) -> requests.Response:
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as exc:
        raise ProviderTimeout(f"{method} {url}: {exc}") from exc
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{method} {url}: {exc}") from exc


def json_body(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError as exc:
        raise MalformedResponse(f"HTTP {response.status_code}: not JSON: {response.text[:200]!r}") from exc
    if not isinstance(body, dict):
        raise MalformedResponse(f"HTTP {response.status_code}: not a JSON object")
    return body


def retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None


# --- result downloads ---------------------------------------------------------------------------


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine literally (``localhost``, 127.x, ::1): a local stub."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_loopback: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return allow_loopback
    return address.is_global and not (
        address.is_private or address.is_link_local or address.is_reserved or address.is_multicast
        or address.is_unspecified
    )


def checked_address(host: str, port: int, *, allow_loopback: bool = False) -> str:
    """The address to connect to for ``host``; ``UnsafeResultURL`` if any address it has is internal.

    Every address the name resolves to is checked (a name with one public and one private
    address is refused), so the one returned is safe to connect to whichever it is.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ProviderUnavailable(f"cannot resolve {host}: {exc}") from exc
    addresses = [ipaddress.ip_address(info[4][0].partition("%")[0]) for info in infos]
    if not addresses:
        raise ProviderUnavailable(f"{host} has no address")
    refused = [str(a) for a in addresses if not _public(a, allow_loopback=allow_loopback)]
    if refused:
        raise UnsafeResultURL(f"{host} resolves to an internal address {', '.join(refused)}")
    return str(addresses[0])


class _PinnedAdapter(HTTPAdapter):
    """Sends to a URL whose host was replaced by a checked address; TLS still names the host.

    SNI and the certificate check use ``server_hostname``, so HTTPS verifies the real name while
    the connection goes to the address that was checked (no second DNS lookup to rebind).
    """

    def __init__(self, server_hostname: str):
        self.server_hostname = server_hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block, server_hostname=self.server_hostname, **pool_kwargs)


def download_result(
    url: str, *, max_bytes: int, deadline: float, timeout: float, allow_http: bool = False,
    allow_loopback: bool = False,
) -> bytes:
    """The body of ``url``, fetched under the rules for URLs a provider hands out.

    - Only ``https`` (``http`` too with ``allow_http``: a local stub); redirects are followed by
      hand, at most ``MAX_REDIRECTS``, each hop held to the same rules.
    - Each hop's host is resolved once and refused if any address is loopback (unless
      ``allow_loopback``), private, link-local, reserved, multicast or unspecified; the request
      then goes to that checked address (see ``_PinnedAdapter``), so DNS rebinding between the
      check and the connection is not possible. Environment proxies are not used, for the same
      reason: the address checked must be the one connected to.
    - At most ``max_bytes`` and ``deadline`` seconds for the whole download, all hops included
      (``genbot.streaming.read_body``: a server dripping bytes cannot stretch it). ``timeout``
      bounds each connect and read.

    Raises ``UnsafeResultURL`` / ``ResultTooLarge`` / ``ResultExpired`` (403/404/410), final;
    ``ProviderTimeout`` / ``ProviderUnavailable`` / ``MalformedResponse``, retryable.
    """
    ends = time.monotonic() + deadline
    with requests.Session() as session:
        session.trust_env = False
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
                raise UnsafeResultURL(f"result URL scheme {parts.scheme!r} refused")
            host = parts.hostname
            if not host:
                raise UnsafeResultURL("result URL without a host")
            try:
                port = parts.port or DEFAULT_PORTS[parts.scheme]
            except ValueError as exc:
                raise UnsafeResultURL(f"result URL with a bad port: {exc}") from None
            address = checked_address(host, port, allow_loopback=allow_loopback)
            pinned = f"[{address}]" if ":" in address else address
            if parts.port:
                pinned += f":{parts.port}"
            session.mount(f"{parts.scheme}://", _PinnedAdapter(host))
            try:
                wait = min(timeout, time_left(ends))
            except BodyTimedOut as exc:
                raise ProviderTimeout(f"result download took longer than {deadline:g}s") from exc
            response = send(
                session, "GET", urlunsplit((parts.scheme, pinned, parts.path or "/", parts.query, "")),
                timeout=(wait, wait), stream=True, allow_redirects=False,
                headers={"Host": parts.netloc.rpartition("@")[2]},
            )
            with response:
                if response.status_code in REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise MalformedResponse(f"redirect {response.status_code} without a Location")
                    url = urljoin(url, location)
                    continue
                if response.status_code in (403, 404, 410):
                    raise ResultExpired(f"result URL answered {response.status_code}")
                if response.status_code != 200:
                    raise ProviderUnavailable(f"result download answered {response.status_code}")
                try:
                    content = read_body(response, max_bytes=max_bytes, ends=ends, timeout=timeout)
                except BodyTooLarge as exc:
                    raise ResultTooLarge(f"result {exc}") from exc
                except BodyTimedOut as exc:
                    raise ProviderTimeout(f"result download (deadline {deadline:g}s): {exc}") from exc
                except StreamError as exc:
                    raise ProviderUnavailable(f"result download broke off: {exc}") from exc
                if not content:
                    raise MalformedResponse("empty result")
                return content
    raise UnsafeResultURL(f"more than {MAX_REDIRECTS} redirects")
