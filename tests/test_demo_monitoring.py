"""The demo's Prometheus and Alertmanager: real binaries, a local /metrics, a page to the receiver."""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path

import psutil
import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from demo import monitoring
from demo.monitoring import MonitoringConfigError, render_alertmanager_config, render_prometheus_config
from demo.processes import ChildFailed, PortTaken, Supervisor, free_port
from demo.receiver import Receiver

RULES = """
groups:
- name: demo-test
  rules:
  - alert: DemoTokenRefreshFailing
    expr: demo_token_refresh_failing > 0
    for: 0s
    labels:
      severity: critical
    annotations:
      summary: The google credential cannot be refreshed.
      description: Run jada-agent auth google.
      runbook_url: https://example.invalid/runbooks/DemoTokenRefreshFailing.md
"""

ALERTMANAGER = """
route:
  receiver: ticket
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
  - receiver: pager
    matchers: ['severity="critical"']
    group_interval: 10m
receivers:
- name: ticket
  webhook_configs:
  - url_file: /etc/jada-agent/ticket-webhook-url
- name: pager
  webhook_configs:
  - url: https://pager.example.invalid/hook
    send_resolved: true
"""


def test_prometheus_config_scrapes_each_job_and_alerts_the_alertmanager(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    config = yaml.safe_load(
        render_prometheus_config(
            {"jada-agent": ["127.0.0.1:9741"], "jada-exporter": ["127.0.0.1:9742"]}, [rules], "127.0.0.1:9093"
        )
    )
    assert config == {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": "jada-agent", "static_configs": [{"targets": ["127.0.0.1:9741"]}]},
            {"job_name": "jada-exporter", "static_configs": [{"targets": ["127.0.0.1:9742"]}]},
        ],
    }


def test_alertmanager_copy_has_short_timings_and_webhooks_to_the_receiver() -> None:
    config = yaml.safe_load(render_alertmanager_config(ALERTMANAGER, "http://127.0.0.1:5001/"))
    route = config["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("1s", "1s", "4h")
    assert route["routes"][0] == {
        "receiver": "pager",
        "matchers": ['severity="critical"'],
        "group_interval": "1s",
    }
    assert config["receivers"] == [
        {"name": "ticket", "webhook_configs": [{"url": "http://127.0.0.1:5001/ticket"}]},
        {"name": "pager", "webhook_configs": [{"url": "http://127.0.0.1:5001/pager", "send_resolved": True}]},
    ]


def test_alertmanager_config_without_a_route_names_the_key() -> None:
    with pytest.raises(MonitoringConfigError, match=r"^alerts/alertmanager.yml: route: missing"):
        render_alertmanager_config(
            "receivers: []\n", "http://127.0.0.1:1", source_name="alerts/alertmanager.yml"
        )


def test_alertmanager_receiver_without_a_name_is_named_by_index() -> None:
    source = "route: {receiver: pager}\nreceivers:\n- webhook_configs: [{url: http://x.invalid/}]\n"
    with pytest.raises(MonitoringConfigError, match=r"^alertmanager.yml: receivers\[0\].name: missing"):
        render_alertmanager_config(source, "http://127.0.0.1:1")


def test_unreadable_alertmanager_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "alertmanager.yml"
    with (
        Supervisor(tmp_path / "logs") as supervisor,
        pytest.raises(MonitoringConfigError, match=rf"^{missing}: cannot read: No such file"),
        monitoring.running_monitoring(supervisor, tmp_path, {}, [], missing, "http://127.0.0.1:1"),
    ):
        pass
    assert supervisor.children == []


def test_taken_prometheus_port_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken, Supervisor(tmp_path) as supervisor:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(PortTaken, match=rf"^port {port} is taken by "),
            monitoring.running_monitoring(
                supervisor, tmp_path, {}, [], ALERTMANAGER, "http://127.0.0.1:1", prometheus_port=port
            ),
        ):
            pass
        assert supervisor.children == []


def test_broken_rule_file_fails_with_prometheus_naming_it(tmp_path: Path) -> None:
    rules = tmp_path / "broken-rules.yml"
    rules.write_text("groups:\n- name: x\n  rules:\n  - alert: Broken\n    expr: rate(\n")
    with (
        Supervisor(tmp_path / "logs") as supervisor,
        pytest.raises(ChildFailed, match=r"(?s)prometheus exited with code \d+ .*broken-rules\.yml"),
        monitoring.running_monitoring(
            supervisor, tmp_path / "monitoring", {}, [rules], ALERTMANAGER, "http://127.0.0.1:1"
        ),
    ):
        pass
    assert supervisor.children == []


def test_rule_firing_on_scraped_metrics_pages_the_receiver_then_resolves(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    failing = Gauge(
        "demo_token_refresh_failing", "1 while the demo credential cannot refresh", registry=registry
    )
    failing.set(1)
    metrics_port = free_port()
    server, thread = start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    alertmanager_yml = tmp_path / "alertmanager.yml"
    alertmanager_yml.write_text(ALERTMANAGER)
    out = io.StringIO()
    try:
        with (
            Receiver(out=out) as receiver,
            Supervisor(tmp_path / "logs") as supervisor,
            monitoring.running_monitoring(
                supervisor,
                tmp_path / "monitoring",
                {"demo-test": [f"127.0.0.1:{metrics_port}"]},
                [rules],
                alertmanager_yml,
                receiver.url,
            ) as stack,
        ):
            deadline = time.monotonic() + 40
            stack.wait_for_alert("DemoTokenRefreshFailing", "firing", deadline)
            page = receiver.wait_for("DemoTokenRefreshFailing", "firing", deadline)
            assert page.receiver == "pager"
            assert page.labels == {
                "alertname": "DemoTokenRefreshFailing",
                "severity": "critical",
                "instance": f"127.0.0.1:{metrics_port}",
                "job": "demo-test",
            }
            assert page.annotations == {
                "summary": "The google credential cannot be refreshed.",
                "description": "Run jada-agent auth google.",
                "runbook_url": "https://example.invalid/runbooks/DemoTokenRefreshFailing.md",
            }
            assert stack.query("demo_token_refresh_failing")[0]["value"][1] == "1"
            held = [a["labels"]["alertname"] for a in stack.alertmanager_alerts()]
            assert held == ["DemoTokenRefreshFailing"]

            failing.set(0)
            receiver.wait_for("DemoTokenRefreshFailing", "resolved", time.monotonic() + 40)
            ports = [int(url.rsplit(":", 1)[1]) for url in (stack.prometheus_url, stack.alertmanager_url)]
            children = [child.pid for child in supervisor.children]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert "FIRING   DemoTokenRefreshFailing [critical]" in out.getvalue()
    listening = {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    assert not listening & set(ports)
    assert not any(psutil.pid_exists(pid) for pid in children)
