"""The connection to a console: base URL, bearer token, timeouts, and one place where HTTP
failures become Tidegate errors (`ConsoleUnreachableError`, `ConsoleApiError`)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from tidegate import __version__
from tidegate.core.errors import ConsoleApiError, ConsoleUnreachableError

API = "/api/v1"


class ConsoleClient:
    """A console at `url`, authenticated by an API token. Tests pass an httpx transport."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        verify: bool | str = True,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"tidegate/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=verify,
            follow_redirects=False,
        )

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200, 201, 202, 204),
    ) -> Any:
        """Call `API + path`; the decoded JSON body (None for 204) or a ConsoleError."""
        try:
            response = self._http.request(
                method, API + path, json=json, params=params, headers=headers
            )
        except httpx.TransportError as exc:
            raise ConsoleUnreachableError(
                f"console {self.url} cannot be reached: {exc.__class__.__name__}: {exc}"
            ) from exc
        if response.status_code not in expect:
            raise _api_error(self.url, method, path, response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ConsoleApiError(
                f"console {self.url} answered {method} {path} with a body that is not JSON",
                status=response.status_code,
            ) from exc


def _api_error(url: str, method: str, path: str, response: httpx.Response) -> ConsoleApiError:
    code: str | None = None
    detail = response.text[:500]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = str(error.get("code")) if error.get("code") else None
            detail = str(error.get("message") or detail)
        elif "detail" in body:
            detail = str(body["detail"])
    hint = {
        401: " (check --token: missing, expired or revoked)",
        403: " (the token's role lacks the permission)",
    }.get(response.status_code, "")
    return ConsoleApiError(
        f"console {url}: {method} {path} -> {response.status_code}: {detail}{hint}",
        status=response.status_code,
        code=code,
    )
