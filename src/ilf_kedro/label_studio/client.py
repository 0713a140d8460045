"""The few REST calls of the round trip, against a running Label Studio server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelStudioClient:
    """The few REST calls of the round trip. ``token`` is a legacy token (sent as
    ``Token``) or a personal access token (a JWT refresh token, exchanged for an access
    token and sent as ``Bearer``)."""

    url: str
    token: str
    timeout_s: float = 60.0

    @cached_property
    def _session(self):
        """One HTTP session for the client's calls; a personal access token is exchanged
        for an access token once (it lasts minutes, longer than any round trip's calls)."""
        import requests

        session = requests.Session()
        if self.token.count(".") != 2:  # legacy tokens are hex; PATs are JWTs
            session.headers["Authorization"] = f"Token {self.token}"
            return session
        response = session.post(
            f"{self.url.rstrip('/')}/api/token/refresh/",
            json={"refresh": self.token},
            timeout=self.timeout_s,
        )
        self._check(response, "exchanging the personal access token")
        session.headers["Authorization"] = f"Bearer {response.json()['access']}"
        return session

    def _call(self, method: str, path: str, what: str, **kwargs):
        url = f"{self.url.rstrip('/')}{path}"
        response = self._session.request(method, url, timeout=self.timeout_s, **kwargs)
        if response.status_code == 401 and self.token.count(".") == 2:
            self.__dict__.pop("_session")  # the access token expired: exchange the PAT again
            response = self._session.request(method, url, timeout=self.timeout_s, **kwargs)
        self._check(response, what)
        return response.json()

    def _check(self, response, what: str) -> None:
        if response.status_code >= 400:
            raise ConnectionError(
                f"Label Studio at {self.url}: {what} failed with HTTP "
                f"{response.status_code}: {response.text[:300]}"
            )

    def create_project(self, title: str, labeling_config: str) -> int:
        """A new project with ``labeling_config``; returns its id."""
        body = {"title": title, "label_config": labeling_config}
        return self._call("POST", "/api/projects/", "creating a project", json=body)["id"]

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> int:
        """Adds ``tasks`` (the JSON import) to ``project``; returns how many it took."""
        answer = self._call(
            "POST", f"/api/projects/{project}/import", "importing tasks", json=tasks
        )
        return int(answer.get("task_count", len(tasks)))

    def export(self, project: int) -> list[dict[str, Any]]:
        """The project's JSON export, every task included (annotated or not)."""
        return self._call(
            "GET",
            f"/api/projects/{project}/export",
            f"exporting project {project}",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )
