"""Harbor: the distribution API, and Harbor's own project API for listing repositories.

Harbor answers `/v2/_catalog` only to system administrators; a robot account or project member
gets 401/403 there. Then the repositories come from `/api/v2.0/projects` and
`/api/v2.0/projects/{project}/repositories` (paged with `page` and `page_size`, basic auth),
whose `name` is already "project/repository". Tags and digests come from the distribution API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from tidegate.core.errors import AuthError, RegistryError
from tidegate.integrations.registries.distribution import MAX_PAGES, DistributionRegistry

HARBOR_PAGE_SIZE = 100


class HarborRegistry(DistributionRegistry):
    def repositories(self) -> Iterator[str]:
        try:
            names = list(super().repositories())
        except (AuthError, RegistryError):
            names = []
            catalog_closed = True
        else:
            catalog_closed = False
        if not catalog_closed:
            yield from names
            return
        for project in self._harbor_pages("/api/v2.0/projects"):
            name = project.get("name")
            if not isinstance(name, str):
                raise RegistryError(f"{self.conn.url}: a Harbor project without a name")
            path = f"/api/v2.0/projects/{quote(name, safe='')}/repositories"
            for repo in self._harbor_pages(path):
                full = repo.get("name")
                if not isinstance(full, str):
                    raise RegistryError(f"{self.conn.url}: a repository of {name} without a name")
                yield full

    def _harbor_pages(self, path: str) -> Iterator[dict[str, Any]]:
        auth = None
        if self.conn.username:
            auth = httpx.BasicAuth(self.conn.username, self.conn.password or "")
        headers = {"Authorization": f"Bearer {self.conn.token}"} if self.conn.token else {}
        store = self.store("")
        for page in range(1, MAX_PAGES + 1):
            params = {"page": page, "page_size": HARBOR_PAGE_SIZE}
            response = store.request(path, params=params, auth=auth, headers=headers)
            if response.status_code in (401, 403):
                raise AuthError(
                    f"{response.status_code} from Harbor {self.conn.url} for {path}: "
                    "credentials refused or missing (a robot account needs list permissions)"
                )
            if response.status_code != 200:
                raise RegistryError(
                    f"Harbor {self.conn.url}: {path} answered {response.status_code}"
                )
            try:
                items = response.json()
            except ValueError as exc:
                raise RegistryError(f"Harbor {self.conn.url}: {path} did not answer JSON") from exc
            if not isinstance(items, list):
                raise RegistryError(f"Harbor {self.conn.url}: {path} did not answer a list")
            yield from (i for i in items if isinstance(i, dict))
            if len(items) < HARBOR_PAGE_SIZE:
                return
        raise RegistryError(f"Harbor {self.conn.url}: more than {MAX_PAGES} pages of {path}")
