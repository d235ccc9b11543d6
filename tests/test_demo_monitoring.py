"""The demo's Prometheus and Alertmanager: real binaries, a local /metrics, a page to the receiver."""

from __future__ import annotations

import io
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from demo import monitoring
from demo.monitoring import (
    MonitoringConfigError,
    parse_duration,
    render_alertmanager_config,
    render_prometheus_config,
)
from demo.processes import ChildFailed, PortTaken, Supervisor, free_port
from demo.receiver import Receiver

REPO = Path(__file__).resolve().parent.parent

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

PROMETHEUS_WITH_HOST_LABEL = """
scrape_configs:
  - job_name: demo-test
    static_configs:
      - targets: ["127.0.0.1:1"]
        labels: {instance: demo-host}
"""

ALERTMANAGER = """
route:
  receiver: ticket
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
  - receiver: deadmansswitch
    matchers: ['alertname="Watchdog"']
    group_wait: 0s
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
- name: deadmansswitch
  webhook_configs:
  - url: https://deadmansswitch.example.invalid/hook
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
    assert route["routes"] == [
        {"receiver": "deadmansswitch", "matchers": ['alertname="Watchdog"'], "group_wait": "0s"},
        {"receiver": "pager", "matchers": ['severity="critical"'], "group_interval": "1s"},
    ]
    assert config["receivers"] == [
        {"name": "ticket", "webhook_configs": [{"url": "http://127.0.0.1:5001/ticket"}]},
        {"name": "pager", "webhook_configs": [{"url": "http://127.0.0.1:5001/pager", "send_resolved": True}]},
        {"name": "deadmansswitch", "webhook_configs": [{"url": "http://127.0.0.1:5001/deadmansswitch"}]},
    ]


def test_alertmanager_timing_that_is_not_a_duration_names_the_route() -> None:
    source = "route: {receiver: r, routes: [{receiver: r, group_wait: soon}]}\nreceivers: [{name: r}]\n"
    with pytest.raises(
        MonitoringConfigError, match=r"^alertmanager.yml: route.routes\[0\].group_wait: not a"
    ):
        render_alertmanager_config(source, "http://127.0.0.1:1")


@pytest.mark.parametrize(("text", "seconds"), [("0s", 0), ("30s", 30), ("1h30m", 5400), ("250ms", 0.25)])
def test_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "1m-2s", "soon"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_prometheus_job_from_the_source_keeps_its_labels_at_the_stacks_port(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        global: {scrape_interval: 15s, evaluation_interval: 15s, external_labels: {site: home}}
        rule_files: [../../alerts/rules.yml]
        scrape_configs:
          - job_name: jada-agent
            scrape_interval: 30s
            static_configs:
              - targets: ["127.0.0.1:9741"]
                labels: {instance: jada-agent}
          - job_name: lightsail
            static_configs: [{targets: ["10.0.0.1:9742"]}]
        """
    )
    rules = tmp_path / "rules.yml"
    config = yaml.safe_load(
        render_prometheus_config(
            {"jada-agent": ["127.0.0.1:40001"], "demo-extra": ["127.0.0.1:40002"]},
            [rules],
            "127.0.0.1:40003",
            source=source,
        )
    )
    assert config["global"] == {
        "scrape_interval": "1s",
        "evaluation_interval": "1s",
        "external_labels": {"site": "home"},
        "scrape_timeout": "1s",
    }
    assert config["rule_files"] == [str(rules)]
    assert config["scrape_configs"] == [
        {
            "job_name": "jada-agent",
            "static_configs": [{"targets": ["127.0.0.1:40001"], "labels": {"instance": "jada-agent"}}],
        },
        {"job_name": "demo-extra", "static_configs": [{"targets": ["127.0.0.1:40002"]}]},
    ]


def test_the_projects_configs_render_to_configs_promtool_and_amtool_accept(tmp_path: Path) -> None:
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text(
        render_prometheus_config(
            {"jada-agent": ["127.0.0.1:40001"], "jada-exporter": ["127.0.0.1:40002"]},
            [REPO / "alerts" / "rules.yml"],
            "127.0.0.1:40003",
            source=(REPO / "deploy" / "prometheus" / "prometheus.yml").read_text(),
        )
    )
    alertmanager_yml = tmp_path / "alertmanager.yml"
    alertmanager_yml.write_text(
        render_alertmanager_config(
            (REPO / "alerts" / "alertmanager.yml").read_text(), "http://127.0.0.1:40004"
        )
    )
    for argv in (
        ["promtool", "check", "config", str(prometheus_yml)],
        ["amtool", "check-config", str(alertmanager_yml)],
    ):
        checked = subprocess.run(argv, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    jobs = {job["job_name"]: job for job in yaml.safe_load(prometheus_yml.read_text())["scrape_configs"]}
    assert jobs["jada-agent"]["static_configs"][0]["targets"] == ["127.0.0.1:40001"]
    webhooks = [
        hook["url"]
        for receiver in yaml.safe_load(alertmanager_yml.read_text())["receivers"]
        for hook in receiver.get("webhook_configs", [])
    ]
    assert webhooks and all(url.startswith("http://127.0.0.1:40004/") for url in webhooks)


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


@pytest.fixture
def failing_gauge() -> Iterator[tuple[Gauge, int]]:
    """Serve a /metrics with a gauge the test rule fires on; yield it and the port."""
    registry = CollectorRegistry()
    failing = Gauge("demo_token_refresh_failing", "1 while the credential cannot refresh", registry=registry)
    failing.set(1)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield failing, port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def stack_files(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    alertmanager_yml = tmp_path / "alertmanager.yml"
    alertmanager_yml.write_text(ALERTMANAGER)
    return rules, alertmanager_yml


def test_rule_firing_on_scraped_metrics_pages_the_receiver_then_resolves(
    tmp_path: Path, failing_gauge: tuple[Gauge, int]
) -> None:
    failing, metrics_port = failing_gauge
    rules, alertmanager_yml = stack_files(tmp_path)
    out = io.StringIO()
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
            prometheus_config=PROMETHEUS_WITH_HOST_LABEL,
        ) as stack,
    ):
        deadline = time.monotonic() + 40
        stack.wait_for_alert("DemoTokenRefreshFailing", "firing", deadline)
        page = receiver.wait_for("DemoTokenRefreshFailing", "firing", deadline)
        assert page.receiver == "pager"
        assert page.labels == {
            "alertname": "DemoTokenRefreshFailing",
            "severity": "critical",
            "instance": "demo-host",
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
    assert "FIRING   DemoTokenRefreshFailing [critical]" in out.getvalue()
    listening = {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    assert not listening & set(ports)
    assert not any(psutil.pid_exists(pid) for pid in children)


def test_a_second_run_in_the_same_workdir_pages_again(
    tmp_path: Path, failing_gauge: tuple[Gauge, int]
) -> None:
    _, metrics_port = failing_gauge
    rules, alertmanager_yml = stack_files(tmp_path)
    for _ in range(2):
        with (
            Receiver(out=io.StringIO()) as receiver,
            Supervisor(tmp_path / "logs") as supervisor,
            monitoring.running_monitoring(
                supervisor,
                tmp_path / "monitoring",
                {"demo-test": [f"127.0.0.1:{metrics_port}"]},
                [rules],
                alertmanager_yml,
                receiver.url,
            ),
        ):
            # The first run stops while the alert still fires; Alertmanager's notification log
            # from it must not swallow the second run's page.
            receiver.wait_for("DemoTokenRefreshFailing", "firing", time.monotonic() + 40)
