"""The HTTP server of a master that `jet-start` runs: bound before the master starts (a taken
explicit port is an error at start), served once the master is ready, stopped after it.

The dashboard's URL (with the token, when the server needs one) goes to
``<data-dir>/web.url`` (mode 0600, like the key it is derived from), where `jet-start
--daemon` reads it to print it; the master's log has it without the token.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from jetmq import clusterkey
from jetmq.config import DEFAULT_WEB_PORT, ClusterConfig
from jetmq.netaddr import is_wildcard
from jetmq.web.server import WebServer, WebStartError
from jetmq.web.source import MasterSource

log = logging.getLogger(__name__)

URL_FILE = "web.url"

__all__ = ["MasterWeb", "WebStartError", "read_url"]


class MasterWeb:
    def __init__(self, server: WebServer, data_dir: Path):
        self.server = server
        self._url_path = Path(data_dir) / URL_FILE

    @classmethod
    def bind(cls, config: ClusterConfig) -> MasterWeb | None:
        """The bound server, or None: --web-port 0, or the default port is taken (a warning)."""
        if config.web_port == 0:
            return None
        try:
            return cls(WebServer(config.web_bind, config.web_port or DEFAULT_WEB_PORT), config.resolved_data_dir)
        except WebStartError as e:
            if config.web_port is not None:
                raise WebStartError(f"{e}: choose another port with --web-port (0: no HTTP server)") from None
            log.warning("%s: starting without the dashboard and /metrics (choose a port with --web-port)", e)
            return None

    def serve(self, master_address: str, config: ClusterConfig) -> str | None:
        """Start serving, as a client of the master at ``master_address``; the dashboard's URL,
        or None when it cannot (logged: the cluster runs on without it)."""
        host, _, port = master_address.rpartition(":")
        connect = f"127.0.0.1:{port}" if is_wildcard(host) else master_address
        try:
            key = None if config.no_auth else clusterkey.load(config.resolved_data_dir / clusterkey.KEY_FILE)
            self.server.start(MasterSource(connect, key), key)
        except Exception as e:
            log.error("the HTTP server could not start (the cluster runs without it): %s", e)
            return None
        url = self.server.url
        fd = os.open(self._url_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(url + "\n")
        log.info("dashboard and /metrics at %s%s", url.split("?")[0],
                 f" (the URL with its token: {self._url_path})" if self.server.token else "")
        return url

    def stop(self) -> None:
        self.server.stop()
        _remove(self._url_path)


def read_url(data_dir: Path, since: float = 0.0) -> str | None:
    """The URL a master of ``data_dir`` serves its dashboard at, if it serves one; ``since``:
    the time (epoch s) the master started, so that a file an earlier master left is not taken."""
    path = Path(data_dir) / URL_FILE
    try:
        if path.stat().st_mtime < since:
            return None
        return path.read_text().strip() or None
    except OSError:
        return None


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
