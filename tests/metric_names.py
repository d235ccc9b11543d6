"""Which metric names alerts and dashboards use, which the programs export, and whether PromQL parses."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

GOLDEN_EXPORTER = Path(__file__).with_name("golden") / "exporter_metrics.prom"

# Series Prometheus makes itself for every target, or for alerts.
PROMETHEUS_NAMES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"})

# Grafana's built-in and template variables, and the value each stands in for when checking.
_GRAFANA_VARIABLES = {"__rate_interval": "5m", "__interval": "1m", "__range": "1d"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})


def known_metric_names() -> frozenset[str]:
    """Return the names the orchestrator and the sidecar export, plus Prometheus's own.

    The source is a live scrape of both programs' /metrics (``live_metric_names``), plus
    the unit collector's names from the sidecar's golden file: they need systemd as PID 1,
    which the test host lacks (tests/test_exporter_systemd_unit.py covers them where it runs).
    """
    golden = GOLDEN_EXPORTER.read_text().splitlines() if GOLDEN_EXPORTER.exists() else []
    unit = {line.split("{")[0].split(" ")[0] for line in golden if line.startswith("jada_unit_")}
    return live_metric_names() | unit | PROMETHEUS_NAMES


@functools.cache
def live_metric_names(deadline_seconds: float = 60.0) -> frozenset[str]:
    """Start both programs against the simulators and a fixture journal; return what they export.

    The orchestrator runs port_sheet_sync every second against the Google simulator, whose
    first refresh fails with invalid_grant and the next succeed, so the error, credential and
    job series all exist; the sidecar reads a fixture journal with the seed's lines and asks
    the Lightsail simulator, so its journal and Lightsail series exist too.
    """
    from journalfixtures import event, write_journal

    from demo import scenario
    from demo.processes import Supervisor, allocate_ports, wait_for_http
    from orchestrator.store import Store
    from simulators.claude import ClaudeSimulator
    from simulators.google import GoogleSimulator
    from simulators.lightsail import LightsailSimulator

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jada-names-")))
        claude = stack.enter_context(ClaudeSimulator())
        google = stack.enter_context(GoogleSimulator())
        lightsail = stack.enter_context(LightsailSimulator())
        lightsail.add_instance("jada-agent")
        google.add_spreadsheet(scenario.SPREADSHEET_ID)
        scenario.write_secret(tmp / "secrets" / "google.json", google.new_authorized_user())
        google.set_scenario(token="invalid_grant", times=1)
        ports = allocate_ports(["orchestrator", "exporter"])
        config = tmp / "config.toml"
        config.write_text(
            scenario.render_config(
                tmp / "state",
                tmp / "secrets",
                f"127.0.0.1:{ports['orchestrator']}",
                claude.base_url,
                google.url,
                sync_interval_seconds=1,
            )
        )
        write_journal(
            tmp / "journal",
            [
                event(
                    scenario.SEED_TOKEN_ERROR_LINE, "token_error", component="port-sheet", status_code="400"
                ),
                event(
                    "[port-sheet] sync failed at 2026-05-13T14:30:00Z: x",
                    "sync_failed",
                    component="port-sheet",
                ),
                event(
                    "[session] task 1 session 1 exited: max_turns after 30 turns (exit code 1)",
                    "session_exit",
                    exit_reason="max_turns",
                ),
            ],
        )
        # A question waiting for a person, so the needs-you age series exists.
        with Store(tmp / "state" / "jada-agent.db") as store:
            store.add_task(
                "Pick the signing provider",
                "Which signing provider should the e-signature flow use?",
                state="needs_you",
                question="Which signing provider should the e-signature flow use?",
            )
        supervisor = stack.enter_context(Supervisor(tmp / "logs"))
        quiet = {
            **os.environ,
            # Logs to stderr, not into a journal other tests read.
            "JADA_JOURNAL_SOCKET": str(tmp / "no-journal"),
            "ANTHROPIC_API_KEY": "sk-ant-names-not-a-real-key",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        orchestrator = supervisor.start(
            "jada-agent", [sys.executable, "-m", "orchestrator", "--config", str(config), "run"], env=quiet
        )
        exporter = supervisor.start(
            "jada-exporter",
            [
                *(sys.executable, "-m", "exporter", f"--web.listen-address=127.0.0.1:{ports['exporter']}"),
                *(f"--journal.directory={tmp / 'journal'}", "--journal.match=SYSLOG_IDENTIFIER=jada-agent"),
                *(f"--journal.state-file={tmp / 'journal-state.json'}", "--journal.read-back=all"),
                *(
                    "--collector.lightsail",
                    "--lightsail.instance-name=jada-agent",
                    "--lightsail.region=us-east-1",
                ),
                f"--lightsail.endpoint-url={lightsail.url}",
            ],
            env=quiet,
        )
        deadline = time.monotonic() + deadline_seconds
        urls = [f"http://127.0.0.1:{ports[name]}/metrics" for name in ("orchestrator", "exporter")]
        wait_for_http(urls[0], deadline, orchestrator)
        wait_for_http(urls[1], deadline, exporter)
        # Until a sync has failed and one has succeeded, some job series do not exist yet.
        wanted = {"jada_agent_token_refresh_errors_total", "jada_agent_job_last_success_timestamp_seconds"}
        while not wanted <= (names := scrape_names(urls[0])):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the orchestrator never exported {sorted(wanted - names)}")
            time.sleep(0.2)
        return frozenset(names | scrape_names(urls[1]))


def scrape_names(url: str) -> set[str]:
    """Return the sample names of the Prometheus text exposition at ``url``."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def substitute_grafana_variables(expr: str) -> str:
    """Replace Grafana variables with values that make the expression plain PromQL."""
    return _VARIABLE.sub(lambda m: _GRAFANA_VARIABLES.get(m.group(1), m.group(1)), expr)


def metric_names_in(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects."""
    text = _STRING.sub('""', substitute_grafana_variables(expr))
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.groups()
        if not call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def promtool_parse_errors(exprs: Iterable[str]) -> str:
    """Check expressions with ``promtool check rules``; return its complaint, or "" when all parse."""
    rules = [
        {"record": f"check:expr_{n}", "expr": substitute_grafana_variables(expr)}
        for n, expr in enumerate(exprs)
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as handle:
        yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}, handle)
        handle.flush()
        result = subprocess.run(
            ["promtool", "check", "rules", handle.name], capture_output=True, text=True, check=False
        )
    return "" if result.returncode == 0 else result.stdout + result.stderr
