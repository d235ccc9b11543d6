"""The demo's webhook receiver: parsing Alertmanager's payload, printing and waiting for pages."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from demo.processes import PortTaken
from demo.receiver import MalformedNotification, Page, Receiver, format_page, parse_notification

LABELS = {"alertname": "JadaTokenRefreshFailing", "severity": "critical", "credential": "google"}
FIRING = {
    "version": "4",
    "groupKey": '{}:{alertname="JadaTokenRefreshFailing"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "pager",
    "groupLabels": {"alertname": "JadaTokenRefreshFailing"},
    "commonLabels": {"alertname": "JadaTokenRefreshFailing", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://127.0.0.1:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "JadaTokenRefreshFailing",
                "severity": "critical",
                "credential": "google",
            },
            "annotations": {
                "summary": "Google token refresh is failing",
                "description": "invalid_grant: re-authenticate",
                "runbook_url": "https://example.invalid/runbooks#token",
            },
            "startsAt": "2026-05-13T14:30:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": "c0ffee",
        }
    ],
}


def resolved() -> dict:
    payload = json.loads(json.dumps(FIRING))
    payload["status"] = "resolved"
    payload["alerts"][0]["status"] = "resolved"
    payload["alerts"][0]["endsAt"] = "2026-05-13T16:00:00Z"
    return payload


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_notification_becomes_one_page_per_alert() -> None:
    assert parse_notification(json.dumps(FIRING).encode()) == [
        Page(
            status="firing",
            alertname="JadaTokenRefreshFailing",
            severity="critical",
            summary="Google token refresh is failing",
            receiver="pager",
            labels=LABELS,
            annotations={
                "summary": "Google token refresh is failing",
                "description": "invalid_grant: re-authenticate",
                "runbook_url": "https://example.invalid/runbooks#token",
            },
            starts_at="2026-05-13T14:30:00Z",
            ends_at="0001-01-01T00:00:00Z",
        )
    ]


def test_page_line_shows_status_alertname_severity_and_summary() -> None:
    (page,) = parse_notification(json.dumps(resolved()).encode())
    assert format_page(page) == (
        "RESOLVED JadaTokenRefreshFailing [critical] Google token refresh is failing (receiver pager)"
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not JSON"),
        (b'{"status": "firing"}', "no 'alerts' list"),
        (b'{"alerts": [{"labels": {"severity": "critical"}}]}', "alert 0 has no labels.alertname"),
        (b'{"alerts": [{"labels": {"alertname": "A"}, "annotations": []}]}', "annotations that are not"),
    ],
)
def test_malformed_body_is_rejected_with_the_reason(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedNotification, match=problem):
        parse_notification(body)


def test_posted_notifications_are_printed_and_waited_for() -> None:
    out = io.StringIO()
    with Receiver(out=out) as receiver:
        assert post(receiver.url + "/pager", json.dumps(FIRING).encode()) == 200
        page = receiver.wait_for("JadaTokenRefreshFailing", "firing", time.monotonic() + 5)
        assert page.annotations["runbook_url"] == "https://example.invalid/runbooks#token"
        later = threading.Timer(0.2, post, (receiver.url + "/pager", json.dumps(resolved()).encode()))
        later.start()
        resolved_page = receiver.wait_for("JadaTokenRefreshFailing", "resolved", time.monotonic() + 10)
        later.join()
    assert resolved_page.ends_at == "2026-05-13T16:00:00Z"
    assert out.getvalue().splitlines() == [
        "FIRING   JadaTokenRefreshFailing [critical] Google token refresh is failing (receiver pager)",
        "RESOLVED JadaTokenRefreshFailing [critical] Google token refresh is failing (receiver pager)",
    ]


def test_malformed_post_is_counted_and_the_receiver_keeps_serving() -> None:
    with Receiver(out=io.StringIO()) as receiver:
        assert post(receiver.url, b"{not json") == 400
        assert receiver.malformed == 1
        assert post(receiver.url, json.dumps(FIRING).encode()) == 200
        assert [p.alertname for p in receiver.pages] == ["JadaTokenRefreshFailing"]


def test_waiting_for_a_page_that_never_comes_times_out_naming_what_arrived() -> None:
    with Receiver(out=io.StringIO()) as receiver:
        post(receiver.url, json.dumps(FIRING).encode())
        with pytest.raises(
            TimeoutError,
            match="no resolved notification for Watchdog arrived; got JadaTokenRefreshFailing/firing",
        ):
            receiver.wait_for("Watchdog", "resolved", time.monotonic() + 0.2)


def test_taken_receiver_port_names_the_process_holding_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortTaken, match=rf"^port {port} is taken by .* \(pid {os.getpid()}\); stop it"):
            Receiver(port=port, out=io.StringIO())
