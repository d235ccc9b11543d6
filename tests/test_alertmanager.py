"""Alertmanager routing: amtool checks the file and routes, a real Alertmanager inhibits and delivers."""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from helpers_daemon import wait_for

from demo.processes import free_port

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "alerts" / "alertmanager.yml"
RULES = REPO / "alerts" / "rules.yml"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
RECEIVER_OF_SEVERITY = {"critical": "pager", "warning": "tickets", "info": "nowhere"}


def _route(*labels: str) -> str:
    result = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={CONFIG}", *labels],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_amtool_check_config_is_clean() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("critical", "pager"), ("warning", "tickets"), ("info", "nowhere")],
)
def test_each_severity_routes_to_its_receiver(severity: str, receiver: str) -> None:
    assert _route("alertname=JadaSomething", "instance=jada-1", f"severity={severity}") == receiver


def test_watchdog_goes_to_the_dead_mans_switch_alone() -> None:
    assert _route("alertname=Watchdog", "severity=none") == "deadmansswitch"


def test_watchdog_repeats_within_minutes_so_its_absence_is_noticed() -> None:
    route = yaml.safe_load(CONFIG.read_text())["route"]
    watchdog = next(r for r in route["routes"] if r["receiver"] == "deadmansswitch")
    assert watchdog["repeat_interval"] == "1m"


def test_every_alert_rule_reaches_the_receiver_of_its_severity() -> None:
    rules = [
        r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if r["alert"] != "Watchdog"
    ]
    for rule in rules:
        severity = rule["labels"]["severity"]
        assert _route(f"alertname={rule['alert']}", f"severity={severity}") == RECEIVER_OF_SEVERITY[severity]


def test_alerts_are_grouped_by_alert_and_instance() -> None:
    assert yaml.safe_load(CONFIG.read_text())["route"]["group_by"] == ["alertname", "instance"]


# A real Alertmanager, with the receivers pointed at a local webhook server.


class _Webhooks(ThreadingHTTPServer):
    """Collect the alert names each receiver path is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.received: dict[str, list[dict]] = {}
        self.lock = threading.Lock()


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _Webhooks

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.received.setdefault(self.path.strip("/"), []).extend(body["alerts"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, _Webhooks]]:
    """Run Alertmanager on the committed routing, webhooks to a local server, timings shortened."""
    webhooks = _Webhooks()
    threading.Thread(target=webhooks.serve_forever, daemon=True).start()
    config = yaml.safe_load(CONFIG.read_text())
    # Only the waits change, so the test sees notifications in seconds; routing stays as written.
    config["route"].update(group_wait="0s", group_interval="1s")
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = f"http://127.0.0.1:{webhooks.server_port}/{receiver['name']}"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
        except OSError:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            return False
        return True

    try:
        wait_for(ready, "Alertmanager to be ready")
        yield url, webhooks
    finally:
        process.terminate()
        process.wait(timeout=10)
        webhooks.shutdown()
        webhooks.server_close()


def _post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    urllib.request.urlopen(request, timeout=5).close()


def _key(labels: dict[str, str]) -> tuple[str, str, str]:
    return labels["alertname"], labels.get("instance", ""), labels["severity"]


def test_a_down_orchestrator_and_a_critical_alert_inhibit_what_follows(alertmanager) -> None:
    url, _ = alertmanager
    _post_alerts(
        url,
        [
            {"alertname": "JadaOrchestratorDown", "instance": "jada-1", "severity": "critical"},
            {"alertname": "JadaSyncJobStale", "instance": "jada-1", "severity": "warning"},
            {"alertname": "JadaJournalReaderStalled", "instance": "jada-1", "severity": "warning"},
            {"alertname": "JadaSyncJobStale", "instance": "jada-2", "severity": "warning"},
            {"alertname": "JadaTokenRefreshFailing", "instance": "jada-1", "severity": "critical"},
            {"alertname": "JadaHostDiskFillingUp", "instance": "jada-1", "severity": "critical"},
            {"alertname": "JadaHostDiskFillingUp", "instance": "jada-1", "severity": "warning"},
            {"alertname": "JadaHostMemoryLow", "instance": "jada-1", "severity": "warning"},
        ],
    )

    def states() -> dict[tuple[str, str, str], str]:
        alerts = _get(f"{url}/api/v2/alerts")
        return {_key(a["labels"]): a["status"]["state"] for a in alerts} if len(alerts) == 8 else {}

    assert wait_for(states, "all eight alerts") == {
        ("JadaOrchestratorDown", "jada-1", "critical"): "active",
        ("JadaSyncJobStale", "jada-1", "warning"): "suppressed",
        ("JadaJournalReaderStalled", "jada-1", "warning"): "suppressed",
        ("JadaSyncJobStale", "jada-2", "warning"): "active",
        ("JadaTokenRefreshFailing", "jada-1", "critical"): "active",
        ("JadaHostDiskFillingUp", "jada-1", "critical"): "active",
        ("JadaHostDiskFillingUp", "jada-1", "warning"): "suppressed",
        ("JadaHostMemoryLow", "jada-1", "warning"): "active",
    }


def test_pages_tickets_and_watchdog_reach_their_webhooks_and_info_goes_nowhere(alertmanager) -> None:
    url, webhooks = alertmanager
    _post_alerts(
        url,
        [
            {"alertname": "JadaTokenRefreshFailing", "instance": "jada-1", "severity": "critical"},
            {"alertname": "JadaNeedsYouTaskWaiting", "instance": "jada-1", "severity": "warning"},
            {"alertname": "JadaDailySessionBudgetExhausted", "instance": "jada-1", "severity": "info"},
            {"alertname": "Watchdog", "severity": "none"},
        ],
    )

    def delivered() -> dict[str, set[str]]:
        with webhooks.lock:
            got = {
                path: {a["labels"]["alertname"] for a in alerts} for path, alerts in webhooks.received.items()
            }
        return got if len(got) == 3 else {}

    assert wait_for(delivered, "the webhook deliveries") == {
        "pager": {"JadaTokenRefreshFailing"},
        "tickets": {"JadaNeedsYouTaskWaiting"},
        "deadmansswitch": {"Watchdog"},
    }
