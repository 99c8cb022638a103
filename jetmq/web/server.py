"""The master's HTTP server: the dashboard (jetmq/web/static/), its JSON API and ``/metrics``.

It runs in threads of the master process (one per request, ``ThreadingHTTPServer``) and is
a client of the master: everything it serves comes from the master's answers to the
requests `jet` sends (source.py), never from the master loop's state. Routes and documents
are listed in docs/operations.md, "HTTP API".
"""
from __future__ import annotations

import json
import logging
import mimetypes
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from jetmq.errors import JetError
from jetmq.netaddr import is_loopback
from jetmq.transport.security import Keypair
from jetmq.web import auth
from jetmq.web.documents import NoSuchJob
from jetmq.web.prometheus import CONTENT_TYPE_LATEST, render

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Content types of the dashboard's files (not left to the host's mime.types).
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                 ".json": "application/json", ".ico": "image/x-icon", ".woff2": "font/woff2"}
#: Log lines /api/jobs/<job>/logs gives when no ?tail= says, and the most it gives.
LOG_LINES, MAX_LOG_LINES = 100, 2000
#: How often /api/events says "changed".
EVENT_INTERVAL_S = 1.0


class WebStartError(Exception):
    """The HTTP server cannot listen where it was asked to."""


class WebServer:
    """Bound by ``bind`` (so a taken port is known before the master starts), serving from
    ``start`` (once the master's address is known) until ``stop``."""

    def __init__(self, host: str, port: int):
        """On a non-loopback ``host`` every request must present the token of the cluster key
        that ``start`` is given (see auth.py)."""
        self.host = host
        self.needs_token = not is_loopback(host)
        self.token: str | None = None
        try:
            self._httpd = ThreadingHTTPServer((host, port), _Handler, bind_and_activate=True)
        except OSError as e:
            raise WebStartError(f"cannot serve HTTP on {host}:{port}: {e.strerror or e}") from None
        self._httpd.daemon_threads = True
        self._httpd.web = self
        self.source = None
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The dashboard's URL, with the token when one is needed."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def start(self, source, key: Keypair | None) -> None:
        """Serve, in a thread, what ``source`` (a MasterSource) answers; ``key``: the cluster's."""
        if self.needs_token:
            if key is None:
                raise WebStartError(f"a --web-bind of {self.host} needs the cluster key: without it anyone "
                                    f"who reaches the port could read the cluster's jobs")
            self.token = auth.token_of(key)
        self.source = source
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="web", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()
        if self.source is not None:
            self.source.close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "jetmq"
    protocol_version = "HTTP/1.1"

    @property
    def web(self) -> WebServer:
        return self.server.web

    def log_message(self, format, *args) -> None:  # the master's log, at debug level
        log.debug("%s %s", self.address_string(), format % args)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path  # still quoted: a job's name may hold a '/' (as %2F)
        self._cookie = None
        if self.web.needs_token:
            presented, in_query = auth.presented_token(self.headers, parts.query)
            if self.web.token is None or not auth.is_valid(presented, self.web.token):
                self._send_json(HTTPStatus.UNAUTHORIZED, {"error": "this server needs the cluster's token: "
                                                          "Authorization: Bearer <token>, or ?token=<token>"},
                                {"WWW-Authenticate": 'Bearer realm="jetmq"'})
                return
            self._cookie = auth.set_cookie_header(presented) if in_query else None
        try:
            self._route(path, parse_qs(parts.query))
        except NoSuchJob as e:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": str(e)})
        except JetError as e:  # the master did not answer, or answered with an error
            self._send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"{type(e).__name__}: {e}"})
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a bug here must not take the server down; the master goes on anyway
            log.exception("serving %s failed", path)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(e).__name__}: {e}"})

    def _route(self, path: str, query: dict) -> None:
        source = self.web.source
        if path == "/api/jobs":
            self._send_json(HTTPStatus.OK, source.jobs_document())
        elif path.startswith("/api/jobs/") and path.endswith("/logs") and path.count("/") == 4:
            tail = query.get("tail", [str(LOG_LINES)])[0]
            if not tail.isdigit():
                self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"tail takes a number of lines, not {tail!r}"})
                return
            name_or_id = unquote(path[len("/api/jobs/"):-len("/logs")])
            self._send_json(HTTPStatus.OK, source.job_logs_document(name_or_id, min(int(tail), MAX_LOG_LINES)))
        elif path.startswith("/api/jobs/") and path.count("/") == 3 and len(path) > len("/api/jobs/"):
            self._send_json(HTTPStatus.OK, source.job_document(unquote(path[len("/api/jobs/"):])))
        elif path == "/api/cluster":
            self._send_json(HTTPStatus.OK, source.cluster_document())
        elif path == "/api/events":
            self._send_events()
        elif path == "/metrics":
            self._send(HTTPStatus.OK, render(source), CONTENT_TYPE_LATEST)
        elif path.startswith("/api/") or path == "/api":
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {path}"})
        else:
            self._send_static(unquote(path))

    def _send_static(self, path: str) -> None:
        relative = "index.html" if path in ("/", "") else path.removeprefix("/static/").lstrip("/")
        root = STATIC_DIR.resolve()
        file = (root / relative).resolve()
        if root not in file.parents or not file.is_file():
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {path}"})
            return
        content_type = (CONTENT_TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
                        or "application/octet-stream")
        self._send(HTTPStatus.OK, file.read_bytes(), content_type, {"Cache-Control": "no-cache"})

    def _send_events(self) -> None:
        """Server-sent events: ``event: changed`` about every second, until the client goes."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self._extra_headers({})
        self.end_headers()
        self.close_connection = True
        if self.command == "HEAD":
            return
        while not self.web.stopping.is_set():
            self.wfile.write(f"event: changed\ndata: {json.dumps({'time': int(time.time() * 1000)})}\n\n".encode())
            self.wfile.flush()
            if self.web.stopping.wait(EVENT_INTERVAL_S):
                break

    def _send_json(self, status: HTTPStatus, document: dict, headers: dict | None = None) -> None:
        self._send(status, json.dumps(document).encode(), "application/json", headers or {})

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._extra_headers(headers or {})
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _extra_headers(self, headers: dict) -> None:
        for name, value in headers.items():
            self.send_header(name, value)
        cookie = getattr(self, "_cookie", None)
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.send_header("X-Content-Type-Options", "nosniff")
