"""The orchestrator's HTTP endpoint: /metrics, /healthz and the status page at /.

A small threaded ``http.server``: scrapes and page views are rare and cheap, and it keeps
the daemon free of a web framework.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from orchestrator.log import logger
from orchestrator.status import Problem, StatusReport, describe_exit, describe_job, format_age, hhmm
from orchestrator.store import STATES

REFRESH_SECONDS = 30


def render_page(report: StatusReport) -> str:
    """Render the status page (sessions today, queue, needs-you, jobs, credentials) as HTML."""
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
    left = max(report.daily_limit - report.sessions_used, 0)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>jada-agent status</title>
<style>{STYLE}</style></head>
<body><h1>jada-agent</h1>
<p class="meta">As of {_clock(report.now)} UTC; this page refreshes itself every {REFRESH_SECONDS} s.</p>
{_attention(report)}
<h2 id="sessions">Sessions today ({report.day} UTC): {report.sessions_used}/{report.daily_limit}</h2>
<p class="budget">{report.sessions_used} of {report.daily_limit} sessions used today, {left} left;
at most {report.turn_limit} turns a session.</p>
{sessions}
<h2 id="queue">Queue</h2>
<table><tr><th>state</th><th>tasks</th></tr>{queue_rows}</table>
<h2 id="needs-you">Needs you ({len(report.needs_you)})</h2>
{needs}
<h2 id="jobs">Jobs</h2>
{_jobs(report)}
<h2 id="credentials">Credentials</h2>
{_credentials(report)}
</body></html>
"""


STYLE = """body{font-family:sans-serif;margin:1.5em 2em;color:#222;max-width:75em}
h1{margin:0 0 .2em}h2{margin:1.2em 0 .4em;font-size:1.2em;border-bottom:1px solid #ddd}
h3{margin:.8em 0 .3em;font-size:1em}.meta,.budget,.schedule{margin:.2em 0 .5em;color:#555}
table{border-collapse:collapse}th{background:#f2f2f2}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}
.max_turns,.timeout,.skipped{color:#a60}.error,.interrupted,.failure{color:#b00}
.completed,.success{color:#070}
.badge{display:inline-block;min-width:3em;text-align:center;font-weight:bold;border-radius:3px;color:#fff}
.OK{background:#2a7d2a}.WARN{background:#b87400}.FAIL{background:#b00}
.attention{list-style:none;padding:.5em 1em;margin:.5em 0;background:#fff6e5;border:1px solid #e0c080}
.attention li{margin:.2em 0}
code{background:#f4f4f4;padding:.1em .3em;border:1px solid #ddd;border-radius:3px}"""


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _attention(report: StatusReport) -> str:
    """Render, at the top, what a person has to act on: failing credentials, open questions."""
    e = html.escape
    items = [
        f"<li><span class='badge {c.status}'>{c.status}</span> "
        f"<a href='#credentials'>credential {e(c.name)}</a>: {_remedy(c.problems[0])}</li>"
        for c in report.credentials
        if c.problems
    ]
    if report.needs_you:
        count = len(report.needs_you)
        items.append(
            f"<li><a href='#needs-you'>{count} question{'s' if count > 1 else ''} waiting for you</a>, "
            f"the oldest for {format_age(report.needs_you[0].waiting_seconds)}</li>"
        )
    return f"<ul class='attention'>{''.join(items)}</ul>" if items else ""


def _remedy(problem: Problem) -> str:
    e = html.escape
    return f"run <code>{e(problem.fix)}</code>" if problem.fix else e(problem.text)


def _jobs(report: StatusReport) -> str:
    """Render each job's schedule and last runs."""
    if not report.jobs:
        return "<p>No scheduled job is enabled.</p>"
    e = html.escape
    parts = []
    for job in report.jobs:
        parts.append(f"<h3>{e(job.name)}</h3><p class='schedule'>{e(describe_job(job, report.now))}</p>")
        if not job.runs:
            parts.append("<p>No run yet.</p>")
            continue
        rows = "".join(
            f"<tr><td>{hhmm(run.started_at)}</td><td class='{e(run.result)}'>{e(run.result)}</td>"
            f"<td>{run.duration_seconds:.1f}s</td><td>{e(run.detail)}</td></tr>"
            for run in job.runs
        )
        parts.append(
            "<table><tr><th>started (UTC)</th><th>result</th><th>duration</th><th>detail</th></tr>"
            f"{rows}</table>"
        )
    return "\n".join(parts)


def _credentials(report: StatusReport) -> str:
    """Render each credential's health with the command that fixes it."""
    if not report.credentials:
        return "<p>No job uses a credential.</p>"
    e = html.escape
    rows = []
    for line in report.credentials:
        problems = line.problems or (Problem(line.status, line.summary, None),)
        health = "<br>".join(
            e(p.text) + (f" &rarr; run: <code>{e(p.fix)}</code>" if p.fix else "") for p in problems
        )
        rows.append(
            f"<tr><td><span class='badge {line.status}'>{line.status}</span></td>"
            f"<td>{e(line.name)}</td><td>{health}</td></tr>"
        )
    return f"<table><tr><th>health</th><th>credential</th><th>state and fix</th></tr>{''.join(rows)}</table>"


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
