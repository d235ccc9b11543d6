"""The whole stack end to end: the seed's incident paged through the real Prometheus and Alertmanager.

One stack (demo/stack.py) with the production rules, alerts/rules.yml unchanged: journald,
the Claude and Google simulators, the sidecar, Prometheus, Alertmanager, the webhook
receiver. First the orchestrator is stopped and the seed's bare script writes its plain
token-error line: the journal path alone pages. Then the orchestrator replays the seed's
day, its sync fails on the expired refresh token and pages; `jada-agent auth google` fixes
it and the resolved notification arrives. Last, every dashboard panel's query returns data.
Those chapters share the stack and run in file order. After them: the demo as a person runs
it (its story, Ctrl-C and SIGTERM, a taken port), and the pure parts it is built from.
"""

from __future__ import annotations

import io
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
import yaml
from metric_names import PROMETHEUS_NAMES, metric_names_in, scrape_names, substitute_grafana_variables
from prometheus_client import CollectorRegistry

from demo import journald, scenario
from demo import stack as stack_module
from demo.processes import PortTaken, check_port_free
from demo.stack import PORT_NAMES, REPO, Stack, StackOptions, running_stack
from exporter.collector import ExporterCollector
from exporter.lightsail import LightsailCollector
from simulators.lightsail import TARGET, LightsailSimulator

needs_journald = pytest.mark.skipif(
    not journald.socket_is_live() and (os.geteuid() != 0 or not journald.JOURNALD.exists()),
    reason="needs a running journald, or root and /lib/systemd/systemd-journald",
)

ALERT = "JadaTokenRefreshFailing"
SYNC_INTERVAL_SECONDS = 3.0
PAGE_SECONDS = 60.0
RUNBOOK = "https://github.com/jada-agent/jada-agent/blob/main/alerts/runbooks/JadaTokenRefreshFailing.md"
# Panels that cannot have data here, and why. Everything else must.
# systemd is not PID 1 in this environment: `systemctl show` has no unit to describe, so the
# unit collector reports jada_exporter_collector_success{collector="unit"} 0 and no series, as
# it should; tests/test_exporter_systemd_unit.py covers it where systemd runs.
NO_DATA_HERE = frozenset({"Unit state", "Restarts (15m)", "Unit CPU", "Unit memory", "Unit uptime"})


@pytest.fixture(scope="class")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(
        tmp_path_factory.mktemp("stack"),
        speed=1.0,
        sync_interval_seconds=SYNC_INTERVAL_SECONDS,
        start_orchestrator=False,
        out=io.StringIO(),
    )
    with running_stack(options) as running:
        yield running


def _query(stack: Stack, promql: str) -> list[dict]:
    assert stack.monitoring is not None
    return stack.monitoring.query(promql)


def _wait_for_series(stack: Stack, promql: str, deadline: float) -> list[dict]:
    while True:
        result = _query(stack, promql)
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{promql} returned nothing in time")
        time.sleep(0.2)


def _first_token_error(stack: Stack, since: float, structured: bool) -> float:
    """Return when the first token error since ``since`` reached the journal."""
    reader = stack.journal.reader()
    try:
        reader.add_match(SYSLOG_IDENTIFIER="jada-agent")
        reader.seek_realtime(since)
        for entry in reader:
            is_event = entry.get("JADA_EVENT") == "token_error"
            plain = entry.get("MESSAGE") == scenario.SEED_TOKEN_ERROR_LINE
            if (structured and is_event) or (not structured and plain):
                return entry["__REALTIME_TIMESTAMP"].timestamp()
    finally:
        reader.close()
    raise AssertionError("no token error in the journal")


def _panels() -> list[dict]:
    panels = []
    for path in sorted((REPO / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            if panel["type"] != "row":
                panels.append(panel)
    return panels


@pytest.mark.e2e
@needs_journald
class TestTheSeedsIncidentEndToEnd:
    """The chapters of the story, in order, on one stack that stops after the last."""

    def test_the_journal_path_alone_pages_with_the_orchestrator_stopped(
        self, stack: Stack, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert stack.orchestrator is None
        _wait_for_series(stack, 'up{job="jada-exporter"} == 1', time.monotonic() + PAGE_SECONDS)
        _wait_for_series(
            stack,
            'jada_exporter_collector_success{collector="journal"} == 1',
            time.monotonic() + PAGE_SECONDS,
        )
        assert [p for p in stack.receiver.pages if p.alertname == ALERT] == []

        written = time.time()
        stack.write_bare_sync_failure()
        page = stack.wait_for_page(ALERT, "firing", time.monotonic() + PAGE_SECONDS, source="journal")
        paged = time.time()

        assert page.receiver == "pager"
        assert page.severity == "critical"
        assert (page.labels["component"], page.labels["status_code"]) == ("port-sheet", "400")
        assert page.summary == "port-sheet logs token errors with HTTP 400."
        assert page.annotations["runbook_url"] == RUNBOOK
        assert "journal" in page.annotations["description"]
        first = _first_token_error(stack, written - 1, structured=False)
        with capsys.disabled():
            print(
                f"\njournal path: paged {paged - first:.1f}s after the first token error reached the journal"
            )

    def test_the_orchestrators_token_error_pages_with_summary_description_and_runbook(
        self, stack: Stack, capsys: pytest.CaptureFixture[str]
    ) -> None:
        started = time.time()
        stack.start_orchestrator()
        page = stack.wait_for_page(ALERT, "firing", time.monotonic() + PAGE_SECONDS, source="orchestrator")
        paged = time.time()

        assert page.receiver == "pager"
        assert page.severity == "critical"
        assert page.labels["credential"] == "google"
        assert page.labels["retryable"] == "false"
        assert page.summary == "The google credential cannot be refreshed: a person must re-authenticate."
        assert page.annotations["description"] == (
            "The orchestrator at jada-agent got a non-retryable token refresh error for credential google"
            " within 65m and no refresh has succeeded since. Jobs that use it fail until"
            " `jada-agent auth google` is run."
        )
        assert page.annotations["runbook_url"] == RUNBOOK
        assert (REPO / "alerts" / "runbooks" / "JadaTokenRefreshFailing.md").exists()
        first = _first_token_error(stack, started, structured=True)
        with capsys.disabled():
            print(
                f"\norchestrator: paged {paged - first:.1f}s after the first token error reached the journal"
            )

    def test_after_reauthentication_the_resolved_notification_arrives(self, stack: Stack) -> None:
        stack.start_orchestrator()
        stack.wait_for_page(ALERT, "firing", time.monotonic() + PAGE_SECONDS, source="orchestrator")
        result = stack.reauthenticate()
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"verified: {scenario.SERVICE_ACCOUNT} refreshed an access token" in result.stdout

        page = stack.wait_for_page(ALERT, "resolved", time.monotonic() + PAGE_SECONDS, source="orchestrator")
        assert page.receiver == "pager"
        assert page.labels["credential"] == "google"
        rows = stack.google.values(scenario.SPREADSHEET_ID, scenario.WORKSHEET)
        assert any(row[:2] == ["crew-pages", "8080"] for row in rows)
        assert _query(stack, 'jada_agent_credential_ok{credential="google"} == 1')

    def test_the_seeds_day_ran_through_the_real_sessions(self, stack: Stack) -> None:
        # 2 of 3 sessions at the turn limit and a question waiting, as on May 13.
        deadline = time.monotonic() + PAGE_SECONDS
        _wait_for_series(stack, 'jada_agent_tasks{state="needs_you"} == 2', deadline)
        exits = {
            r["metric"]["reason"]: float(r["value"][1])
            for r in _query(stack, "jada_agent_session_exits_total")
        }
        assert (exits["max_turns"], exits["completed"]) == (2, 1)
        assert _query(stack, "jada_agent_daily_sessions_used == 3")

    def test_every_dashboard_panel_returns_data_in_the_stack(self, stack: Stack) -> None:
        # The incident's story has played out (the tests above); a panel with no data now is dead.
        _wait_for_series(
            stack,
            'jada_agent_job_runs_total{result="success"} > 0',
            time.monotonic() + PAGE_SECONDS,
        )
        # rate() and increase() need two samples since the fix; poll until they have them.
        deadline = time.monotonic() + 30
        while True:
            dead = []
            for panel in _panels():
                if panel["title"] in NO_DATA_HERE:
                    continue
                for target in panel["targets"]:
                    expr = substitute_grafana_variables(target["expr"].replace("$instance", ".*"))
                    if not _query(stack, expr):
                        dead.append(f"{panel['title']}: {expr}")
            if not dead or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert dead == []

    def test_every_metric_an_alert_or_a_panel_uses_is_in_the_live_scrape(self, stack: Stack) -> None:
        live = set().union(
            *(scrape_names(f"{stack.url(name)}/metrics") for name in ("orchestrator", "exporter"))
        )
        used = {
            name
            for group in yaml.safe_load((REPO / "alerts" / "rules.yml").read_text())["groups"]
            for rule in group["rules"]
            for name in metric_names_in(rule["expr"])
        } | {
            name
            for panel in _panels()
            for target in panel["targets"]
            for name in metric_names_in(target["expr"])
        }
        missing = used - live - PROMETHEUS_NAMES
        # The unit collector's names need systemd as PID 1 (see NO_DATA_HERE).
        assert {name for name in missing if not name.startswith("jada_unit_")} == set()

    def test_no_secret_reaches_metrics_pages_logs_or_the_journal(self, stack: Stack) -> None:
        stored = json.loads((stack.secrets_dir / "google.json").read_text())
        secrets = [
            scenario.EXPIRED_REFRESH_TOKEN,
            *stack.google.clients.values(),
            *stack.google.access_tokens,
            stored.get("private_key_id", ""),
            "PRIVATE KEY",
            stack_module.DEMO_API_KEY,
        ]
        assert len(secrets) >= 5 and all(secrets)
        texts = [
            urllib.request.urlopen(f"{stack.url(n)}/metrics").read().decode()
            for n in ("orchestrator", "exporter")
        ]
        texts += [json.dumps(notification) for notification in stack.receiver.notifications]
        texts += [path.read_text(errors="replace") for path in stack.log_dir.glob("*.log")]
        reader = stack.journal.reader()
        try:
            texts += [repr(entry) for entry in reader]
        finally:
            reader.close()
        leaked = [secret for secret in secrets if any(secret in text for text in texts)]
        assert leaked == []


def test_compressed_rules_divide_for_ranges_and_offsets_by_the_speed() -> None:
    source = """
groups:
- name: g
  rules:
  - alert: A
    expr: (x unless x offset 65m) or increase(x[65m]) > 0 and rate(y[1m]) > 0.5 and z[1h:5m]
    for: 1h
    labels: {severity: critical}
  - alert: B
    expr: up == 0
    for: 0m
"""
    rules = yaml.safe_load(scenario.compress_rules(source, 60))["groups"][0]["rules"]
    assert rules[0]["expr"] == (
        "(x unless x offset 65s) or increase(x[65s]) > 0 and rate(y[4s]) > 0.5 and z[60s:5s]"
    )
    assert (rules[0]["for"], rules[1]["for"]) == ("60s", "0m")
    shorter = yaml.safe_load(scenario.compress_rules(source.replace("for: 1h", "for: 5m"), 60))
    assert shorter["groups"][0]["rules"][0]["for"] == "15s"
    assert rules[0]["labels"] == {"severity": "critical"}


def test_compressed_project_rules_pass_promtool(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(scenario.compress_rules((REPO / "alerts" / "rules.yml").read_text(), 60))
    result = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compression_leaves_quoted_label_values_alone() -> None:
    expr = "rate(x{reason=~\"[a-z]+ offset 5m\"}[10m] offset 1h) and y{a='[1h]'}[1h:]"
    assert scenario.compress_expr(expr, 60) == (
        "rate(x{reason=~\"[a-z]+ offset 5m\"}[10s] offset 60s) and y{a='[1h]'}[60s:]"
    )


def test_a_speed_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="speed must be greater than 0"):
        scenario.compress_rules("groups: []", 0)


def test_seed_credential_is_written_with_mode_0600(tmp_path: Path) -> None:
    path = scenario.write_secret(tmp_path / "secrets" / "google.json", {"refresh_token": "r"})
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert json.loads(path.read_text()) == {"refresh_token": "r"}


@pytest.fixture
def lightsail() -> Iterator[LightsailSimulator]:
    with LightsailSimulator() as sim:
        yield sim


def _lightsail_client(sim: LightsailSimulator) -> Any:
    return boto3.client(
        "lightsail",
        region_name="us-east-1",
        endpoint_url=sim.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_the_sidecars_lightsail_collector_reads_the_simulator_through_boto3(
    lightsail: LightsailSimulator,
) -> None:
    lightsail.add_instance("jada-agent", StatusCheckFailed_System=1.0, BurstCapacityPercentage=40.0)
    registry = CollectorRegistry()
    registry.register(ExporterCollector([LightsailCollector(_lightsail_client(lightsail), "jada-agent")]))
    get = registry.get_sample_value
    assert get("jada_exporter_collector_success", {"collector": "lightsail"}) == 1
    base = {"instance_name": "jada-agent"}
    assert get("jada_lightsail_status_check_failed", {**base, "check": "system"}) == 1
    assert get("jada_lightsail_status_check_failed", {**base, "check": "instance"}) == 0
    assert get("jada_lightsail_burst_capacity_ratio", base) == 0.4
    assert get("jada_lightsail_cpu_utilization_ratio", base) == 0.075
    assert lightsail.requests == 5


def test_an_unknown_lightsail_instance_fails_the_collector_loudly(lightsail: LightsailSimulator) -> None:
    registry = CollectorRegistry()
    registry.register(ExporterCollector([LightsailCollector(_lightsail_client(lightsail), "missing")]))
    get = registry.get_sample_value
    assert get("jada_exporter_collector_success", {"collector": "lightsail"}) == 0
    assert get("jada_lightsail_burst_capacity_ratio", {"instance_name": "missing"}) is None
    errors = {"instance_name": "missing", "metric_name": "CPUUtilization"}
    assert get("jada_lightsail_api_errors_total", errors) == 1


def test_an_unsigned_lightsail_request_is_refused(lightsail: LightsailSimulator) -> None:
    lightsail.add_instance("jada-agent")
    status, body = lightsail.answer(TARGET, "", b"{}")
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")


def _free_port_base(count: int = len(PORT_NAMES)) -> int:
    """Return a base port with ``count`` free ports from it on, on 127.0.0.1."""
    for _ in range(50):
        base = random.randrange(20000, 30000)
        try:
            for port in range(base, base + count):
                check_port_free(port)
        except PortTaken:
            continue
        return base
    raise AssertionError("no run of free ports found")


def _read_until(process: subprocess.Popen[str], marker: str, deadline: float) -> str:
    """Return the demo's output up to and including the line holding ``marker``."""
    assert process.stdout is not None
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if marker in line:
                return "".join(seen)
    raise AssertionError(f"{marker!r} never came; the demo printed:\n{''.join(seen)}")


def _demo(workdir: Path, port_base: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "demo", "--port-base", str(port_base), "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )


@pytest.mark.e2e
@needs_journald
def test_sigterm_then_ctrl_c_stop_every_process_of_the_demo_run_after_run(tmp_path: Path) -> None:
    base = _free_port_base()
    for signum in (signal.SIGTERM, signal.SIGINT):
        process = _demo(tmp_path / "demo", base)
        try:
            printed = _read_until(process, "What happens:", time.monotonic() + 60)
            assert f"orchestrator status page   http://127.0.0.1:{base}/" in printed
            tree = psutil.Process(process.pid).children(recursive=True)
            listening = {
                (conn.laddr.ip, conn.laddr.port)
                for conn in psutil.net_connections(kind="inet")
                if conn.status == psutil.CONN_LISTEN and conn.pid in {process.pid, *(p.pid for p in tree)}
            }
            assert {port for _, port in listening} >= set(range(base, base + len(PORT_NAMES)))
            assert {ip for ip, _ in listening} == {"127.0.0.1"}

            process.send_signal(signum)
            rest, _ = process.communicate(timeout=60)
        finally:
            process.kill()
        assert process.returncode == 128 + signum, rest
        word = "Terminated" if signum == signal.SIGTERM else "Interrupted"
        assert f"{word}; every process the demo started is stopped." in rest
        assert "Traceback" not in printed + rest
        assert [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        for port in range(base, base + len(PORT_NAMES)):
            check_port_free(port)


def test_a_taken_port_is_named_without_a_traceback(tmp_path: Path) -> None:
    base = _free_port_base()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 2))
        holder.listen()
        process = _demo(tmp_path / "demo", base)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert f"python -m demo: port {base + 2} is taken by " in output
    assert f"(pid {os.getpid()}); stop it or pass --port-base" in output
    assert "Traceback" not in output


@pytest.mark.e2e
@needs_journald
def test_the_demo_tells_the_incident_to_its_fix_and_ends_by_itself(tmp_path: Path) -> None:
    # At 600x the sync runs every 3 s and the journal path's 65-minute window lasts 6.5 s.
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo",
            "--speed",
            "600",
            "--until-resolved",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=170,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    # The seed's sessions run beside the sync, so only their own order is fixed.
    sessions = [
        "[session] task 1 session 1 exited: max_turns after 30 turns (exit code 1)",
        "[session] task 2 session 2 exited: completed after 2 turns (exit code 0)",
        "[session] task 1 session 3 exited: max_turns after 30 turns (exit code 1)",
    ]
    story = [
        "[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked.",
        "FIRING   JadaTokenRefreshFailing [critical] The google credential cannot be refreshed",
        "after the first token error reached the journal",
        "$ jada-agent auth google --service-account",
        f"verified: {scenario.SERVICE_ACCOUNT} refreshed an access token",
        "[port-sheet] sync ok at",
        "RESOLVED JadaTokenRefreshFailing [critical] The google credential cannot be refreshed",
        "RESOLVED JadaTokenRefreshFailing [critical] port-sheet logs token errors with HTTP 400.",
        "All resolved.",
        "Stopped.",
    ]
    for lines in (sessions, story):
        positions = [process.stdout.find(line) for line in lines]
        assert -1 not in positions, process.stdout
        assert positions == sorted(positions), process.stdout
    assert "Traceback" not in process.stdout + process.stderr
