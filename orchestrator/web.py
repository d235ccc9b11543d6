"""The orchestrator's HTTP endpoint: /metrics, /healthz and the status page at /.

A small threaded ``http.server``: scrapes and page views are rare and cheap, and it keeps
the daemon free of a web framework.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from orchestrator.log import logger
from orchestrator.status import StatusReport, describe_exit, format_age, hhmm
from orchestrator.store import STATES

REFRESH_SECONDS = 30


def render_page(report: StatusReport) -> str:
    """Render the status page (sessions today, queue, needs-you) as HTML."""
    e = html.escape
    session_rows = "".join(
        f"<tr><td>{s.id}</td><td>{hhmm(s.started_at)}</td><td>{s.task_id}</td><td>{e(s.task_title)}</td>"
        f"<td>{s.turns}/{report.turn_limit}</td><td class='{e(s.exit_reason or 'running')}'>"
        f"{e(describe_exit(s))}</td></tr>"
        for s in report.sessions
    )
    queue_rows = "".join(
        f"<tr><td>{state}</td><td>{report.queue.get(state, 0)}</td></tr>" for state in STATES
    )
    needs_rows = "".join(
        f"<tr><td>{n.id}</td><td>{'' if n.parent_id is None else n.parent_id}</td><td>{e(n.title)}</td>"
        f"<td>{e(n.question)}</td><td>{format_age(n.waiting_seconds)}</td></tr>"
        for n in report.needs_you
    )
    needs = (
        "<table><tr><th>task</th><th>from task</th><th>title</th><th>question</th><th>waiting</th></tr>"
        f"{needs_rows}</table>"
        if report.needs_you
        else "<p>Nothing waits for you.</p>"
    )
    sessions = (
        "<table><tr><th>session</th><th>started (UTC)</th><th>task</th><th>title</th><th>turns</th>"
        f"<th>exit</th></tr>{session_rows}</table>"
        if report.sessions
        else "<p>No session yet today.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>jada-agent status</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}.max_turns,.timeout{{color:#a60}}
.error,.interrupted{{color:#b00}}</style></head>
<body><h1>jada-agent</h1>
<h2 id="sessions">Sessions today ({report.day} UTC): {report.sessions_used}/{report.daily_limit}</h2>
{sessions}
<h2 id="queue">Queue</h2>
<table><tr><th>state</th><th>tasks</th></tr>{queue_rows}</table>
<h2 id="needs-you">Needs you ({len(report.needs_you)})</h2>
{needs}
</body></html>
"""


class StatusServer:
    """Serve /metrics, /healthz and / on a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Callable[[], bytes],
        health: Callable[[], tuple[bool, str]],
        report: Callable[[], StatusReport],
    ) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                # Scrapes every 15 s would drown the journal; errors are logged in _handle.
                pass

        self._metrics = metrics
        self._health = health
        self._report = report
        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval lets stop() return promptly when the daemon shuts down.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name="jada-web", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        """Return the (host, port) actually bound (port 0 picks a free one)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                self._send(request, 200, CONTENT_TYPE_LATEST, self._metrics())
            elif path == "/healthz":
                ok, detail = self._health()
                self._send(request, 200 if ok else 503, "text/plain; charset=utf-8", f"{detail}\n".encode())
            elif path == "/":
                body = render_page(self._report()).encode()
                self._send(request, 200, "text/html; charset=utf-8", body)
            else:
                self._send(
                    request, 404, "text/plain; charset=utf-8", b"not found; try /metrics, /healthz or /\n"
                )
        except Exception as exc:
            logger.error("[web] %s failed: %s", path, exc)
            self._send(request, 500, "text/plain; charset=utf-8", b"internal error; see the journal\n")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
