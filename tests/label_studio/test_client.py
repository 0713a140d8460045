"""The Label Studio REST client (ilf_kedro.label_studio.client) against a loopback HTTP
server that counts token exchanges."""

import http.server
import json
import threading

from ilf_kedro import label_studio
from tests.conftest import PROJECT_ROOT

CONFIG = (PROJECT_ROOT / "conf/base/label_studio/labeling_config.xml").read_text()


class _TokenCountingServer(http.server.BaseHTTPRequestHandler):
    """The two routes a personal access token round trip uses, counting token exchanges
    (label-studio itself needs its own virtualenv: tests/datasets/test_label_studio.py)."""

    refreshes: list[str] = []
    valid_access: set[str] = set()

    def _answer(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        if self.path == "/api/token/refresh/":
            access = f"access-{len(self.refreshes)}"
            self.refreshes.append(body["refresh"])
            self.valid_access.add(access)
            return self._answer(200, {"access": access})
        if self.headers["Authorization"].removeprefix("Bearer ") not in self.valid_access:
            return self._answer(401, {"detail": "expired"})
        return self._answer(201, {"id": 7, "task_count": len(body or [])})

    def log_message(self, *args):
        pass


def test_a_personal_access_token_is_exchanged_once_per_client_and_again_when_expired():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenCountingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = label_studio.LabelStudioClient(url, "header.payload.signature")
        assert client.create_project("p", CONFIG) == 7
        assert client.import_tasks(7, [{"data": {}}] * 3) == 3
        assert client.import_tasks(7, [{"data": {}}]) == 1
        assert _TokenCountingServer.refreshes == ["header.payload.signature"]
        _TokenCountingServer.valid_access.clear()  # the access token expires
        assert client.import_tasks(7, [{"data": {}}] * 2) == 2
        assert len(_TokenCountingServer.refreshes) == 2
    finally:
        server.shutdown()
        server.server_close()
