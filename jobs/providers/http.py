"""``requests`` calls shared by the real clients: transport failures become provider errors."""
from __future__ import annotations

import requests

from .base import MalformedResponse, ProviderTimeout, ProviderUnavailable


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
