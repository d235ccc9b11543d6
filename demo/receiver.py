"""A local Alertmanager webhook receiver that prints each page as it arrives.

Alertmanager posts one JSON notification per alert group (webhook payload version 4);
each alert in it becomes a Page, printed as one line for the person watching the demo:

    FIRING   JadaTokenRefreshFailing [critical] Google token refresh is failing (receiver pager)
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, TextIO

from demo.processes import check_port_free
from simulators.httpserver import ThreadedServer

logger = logging.getLogger("jada-demo.receiver")

MAX_BODY_BYTES = 1 << 20


class MalformedNotification(ValueError):
    """A POST body that is not an Alertmanager webhook notification."""


@dataclass(frozen=True)
class Page:
    """One alert out of a webhook notification."""

    status: str
    alertname: str
    severity: str
    summary: str
    receiver: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: str = ""
    ends_at: str = ""


def parse_notification(body: bytes) -> list[Page]:
    """Return the pages in an Alertmanager webhook body, or raise MalformedNotification."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedNotification(f"not JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise MalformedNotification("no 'alerts' list in the notification")
    receiver = str(payload.get("receiver", ""))
    pages = []
    for index, alert in enumerate(payload["alerts"]):
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(labels, dict) or "alertname" not in labels:
            raise MalformedNotification(f"alert {index} has no labels.alertname")
        annotations = alert.get("annotations", {})
        if not isinstance(annotations, dict):
            raise MalformedNotification(f"alert {index} has annotations that are not an object")
        pages.append(
            Page(
                status=str(alert.get("status", payload.get("status", ""))),
                alertname=str(labels["alertname"]),
                severity=str(labels.get("severity", "")),
                summary=str(annotations.get("summary", "")),
                receiver=receiver,
                labels={str(k): str(v) for k, v in labels.items()},
                annotations={str(k): str(v) for k, v in annotations.items()},
                starts_at=str(alert.get("startsAt", "")),
                ends_at=str(alert.get("endsAt", "")),
            )
        )
    return pages


def format_page(page: Page) -> str:
    """Return the one line a person watching the demo reads for a page."""
    severity = f" [{page.severity}]" if page.severity else ""
    summary = f" {page.summary}" if page.summary else ""
    return f"{page.status.upper():<8} {page.alertname}{severity}{summary} (receiver {page.receiver})"


class Receiver(ThreadedServer):
    """Record and print every webhook notification; wait for a given one with a deadline."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, out: TextIO | None = None) -> None:
        self._out = out if out is not None else sys.stdout
        self._condition = threading.Condition()
        self.pages: list[Page] = []
        self.notifications: list[dict[str, Any]] = []
        self.malformed = 0
        if port:
            check_port_free(port, host)
        super().__init__(host, port, self._handler_class(), "receiver")

    def record(self, body: bytes) -> list[Page]:
        """Parse, store and print one notification body; raise MalformedNotification."""
        try:
            pages = parse_notification(body)
        except MalformedNotification as exc:
            self._count_malformed(str(exc))
            raise
        with self._condition:
            self.notifications.append(json.loads(body))
            self.pages.extend(pages)
            for page in pages:
                print(format_page(page), file=self._out, flush=True)
            self._condition.notify_all()
        return pages

    def _count_malformed(self, reason: str) -> None:
        with self._condition:
            self.malformed += 1
        logger.warning("receiver: malformed notification ignored: %s", reason)

    def wait_for(self, alertname: str, status: str, deadline: float) -> Page:
        """Return the first page for ``alertname`` with ``status`` before ``deadline`` (monotonic)."""
        with self._condition:
            while True:
                for page in self.pages:
                    if page.alertname == alertname and page.status == status:
                        return page
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(f"{p.alertname}/{p.status}" for p in self.pages) or "nothing"
                    raise TimeoutError(f"no {status} notification for {alertname} arrived; got {seen}")
                self._condition.wait(remaining)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._reply(200, b"ok\n")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    receiver._count_malformed(f"body of {length} bytes is over {MAX_BODY_BYTES}")
                    self._reply(413, b"too large\n")
                    return
                try:
                    receiver.record(self.rfile.read(length))
                except MalformedNotification as exc:
                    self._reply(400, f"{exc}\n".encode())
                    return
                self._reply(200, b"ok\n")

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                # The page lines are the output; per-request access lines would bury them.
                return

        return Handler
