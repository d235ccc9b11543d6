"""Generate the Grafana dashboards in dashboards/ from the selectors and thresholds in alerts/config.yaml.

Run ``.venv/bin/python dashboards/generate.py`` after editing config.yaml or this file and
commit the JSON; ``--check`` exits 1 when a committed dashboard differs from what it gives.
Generating keeps the job selectors and the alert thresholds drawn on panels in one place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DASHBOARDS_DIR = Path(__file__).resolve().parent
# alerts/generate.py owns config.yaml's format; this script is run as a file, not a package.
sys.path.insert(0, str(DASHBOARDS_DIR.parent))

from alerts.generate import load_config  # noqa: E402

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24
HEIGHT = 8


class Layout:
    """Place panels left to right in rows of the dashboard's 24-column grid, numbering them."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_height = 0

    def row(self, title: str) -> None:
        """Start a new row with a header."""
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": len(self.panels) + 1,
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": self.y},
            }
        )
        self.y += 1

    def add(self, panel: dict[str, Any], width: int = 8, height: int = HEIGHT) -> None:
        """Add a panel of the given size after the previous one."""
        if self.x + width > WIDTH:
            self._newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += width
        self.row_height = max(self.row_height, height)

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0


def panel(
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    unit: str,
    kind: str = "timeseries",
    thresholds: tuple[tuple[float, str], ...] = (),
    base: str = "green",
    stack: bool = False,
    bars: bool = False,
    mappings: list[dict[str, Any]] | None = None,
    instant: bool = False,
    target_format: str = "time_series",
) -> dict[str, Any]:
    """Return a panel drawing ``targets`` (expression, legend) in ``unit``.

    ``thresholds`` are (value, colour) steps above the ``base`` colour: where an alert has a
    threshold the panel draws it, red on the side where the alert fires.
    """
    threshold_block = {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}] + [{"color": c, "value": v} for v, c in thresholds],
    }
    defaults: dict[str, Any] = {"unit": unit, "thresholds": threshold_block, "mappings": mappings or []}
    if kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "bars" if bars else "line",
            "fillOpacity": 60 if bars else 10,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "thresholdsStyle": {"mode": "line+area" if thresholds else "off"},
            "spanNulls": False,
        }
    else:
        defaults["color"] = {"mode": "thresholds"}
    result: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
        if kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "refId": chr(ord("A") + n),
                "format": target_format,
                "instant": instant,
                "range": not instant,
            }
            for n, (expr, legend) in enumerate(targets)
        ],
    }
    return result


def _instance_variable(job_selector: str) -> dict[str, Any]:
    query = f"label_values(up{{{job_selector}}}, instance)"
    return {
        "name": "instance",
        "label": "Instance",
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": "instance"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {},
        "sort": 1,
        "hide": 0,
    }


def dashboard(uid: str, title: str, description: str, job_selector: str, layout: Layout) -> dict[str, Any]:
    """Return a whole dashboard with the datasource and instance template variables."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["jada-agent"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-24h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                },
                _instance_variable(job_selector),
            ]
        },
        "panels": layout.panels,
    }


def overview(p: dict[str, Any]) -> dict[str, Any]:
    """Build the orchestrator's overview: budgets, sessions, queue, credentials, jobs, Claude."""
    o = p["orch"] + ',instance=~"$instance"'
    e = p["exp"]
    stale_30m_job = p["job_stale_intervals"] * 1800 + p["job_stale_grace_seconds"]
    ok_mapping = [
        {
            "type": "value",
            "options": {"0": {"text": "failing", "color": "red"}, "1": {"text": "ok", "color": "green"}},
        }
    ]
    layout = Layout()
    layout.row("Budgets and sessions")
    layout.add(
        panel(
            "Sessions today",
            "Sessions started this UTC day against the daily limit.",
            [
                (f"max by (instance) (jada_agent_daily_sessions_used{{{o}}})", "used {{instance}}"),
                (f"max by (instance) (jada_agent_daily_session_limit{{{o}}})", "limit {{instance}}"),
            ],
            "none",
            kind="stat",
        ),
        width=5,
    )
    layout.add(
        panel(
            "Daily budget used",
            "Share of today's sessions spent; at red, queued tasks wait for the next UTC day.",
            [
                (
                    f"max by (instance) (jada_agent_daily_sessions_used{{{o}}})"
                    f" / max by (instance) (jada_agent_daily_session_limit{{{o}}})",
                    "{{instance}}",
                )
            ],
            "percentunit",
            kind="gauge",
            thresholds=((0.8, "orange"), (1, "red")),
        ),
        width=5,
    )
    layout.add(
        panel(
            "Turns per session",
            "How many turns sessions used, in the last 24h, against the turn limit.",
            [
                (
                    f"sum by (le) (increase(jada_agent_session_turns_bucket{{{o}}}[24h]))",
                    "{{le}}",
                )
            ],
            "none",
            kind="bargauge",
            instant=True,
            # Grafana turns cumulative le buckets into a count per bucket.
            target_format="heatmap",
        ),
        width=9,
    )
    layout.add(
        panel(
            "Turn limit",
            "The most turns a session may use (max_turns).",
            [(f"max by (instance) (jada_agent_session_turn_limit{{{o}}})", "{{instance}}")],
            "none",
            kind="stat",
        ),
        width=5,
    )
    layout.add(
        panel(
            "Session exits by reason",
            "Why sessions ended: completed, max_turns, error, timeout, interrupted.",
            [
                (
                    f"sum by (reason) (increase(jada_agent_session_exits_total{{{o}}}[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            "short",
            stack=True,
            bars=True,
        ),
        width=12,
    )
    layout.add(
        panel(
            f"Exits at the turn limit ({p['turn_limit_window']})",
            f"Share of the last {p['turn_limit_window']}'s session exits that were max_turns; "
            "JadaSessionsHittingTurnLimit fires at the line.",
            [
                (
                    "sum by (instance) (increase("
                    f'jada_agent_session_exits_total{{{o},reason="max_turns"}}[{p["turn_limit_window"]}]))'
                    " / sum by (instance) (increase("
                    f"jada_agent_session_exits_total{{{o}}}[{p['turn_limit_window']}]))",
                    "{{instance}}",
                )
            ],
            "percentunit",
            thresholds=((p["turn_limit_exit_share"], "red"),),
        ),
        width=12,
    )
    layout.row("Queue")
    layout.add(
        panel(
            "Tasks by state",
            "The task queue: queued, running, needs_you, done, failed, cancelled.",
            [(f"sum by (state) (jada_agent_tasks{{{o}}})", "{{state}}")],
            "short",
            stack=True,
        ),
        width=12,
    )
    layout.add(
        panel(
            "Needs you",
            "Tasks waiting for a person's answer.",
            [(f'sum(jada_agent_tasks{{{o},state="needs_you"}})', "needs you")],
            "short",
            kind="stat",
            thresholds=((1, "orange"),),
        ),
        width=4,
    )
    layout.add(
        panel(
            "Oldest needs-you task waiting",
            "How long the oldest needs-you task has waited; JadaNeedsYouTaskWaiting fires at red.",
            [(f"time() - min(jada_agent_needs_you_oldest_timestamp_seconds{{{o}}})", "waiting")],
            "s",
            kind="stat",
            thresholds=((p["needs_you_wait_seconds"], "red"),),
        ),
        width=8,
    )
    layout.row("Credentials and jobs")
    layout.add(
        panel(
            "Token refresh errors",
            "Failed OAuth refreshes by credential, HTTP status, OAuth error and whether retrying helps.",
            [
                (
                    "sum by (credential, status_code, oauth_error, retryable) "
                    f"(increase(jada_agent_token_refresh_errors_total{{{o}}}[$__rate_interval]))",
                    "{{credential}} {{status_code}} {{oauth_error}} retryable={{retryable}}",
                ),
                (
                    "sum by (component, status_code) "
                    f"(increase(jada_journal_token_errors_total{{{e}}}[$__rate_interval]))",
                    "journal: {{component}} {{status_code}}",
                ),
            ],
            "short",
            bars=True,
        ),
        width=12,
    )
    layout.add(
        panel(
            "Credential health",
            "1 when the credential last refreshed fine and its file is sane.",
            [(f"min by (credential) (jada_agent_credential_ok{{{o}}})", "{{credential}}")],
            "none",
            kind="stat",
            thresholds=((1, "green"),),
            base="red",
            mappings=ok_mapping,
        ),
        width=6,
    )
    layout.add(
        panel(
            "Credential file insecure",
            "1 when a credential file is not mode 0600 or not owned by the service user.",
            [(f"max by (credential) (jada_agent_credential_file_insecure{{{o}}})", "{{credential}}")],
            "none",
            kind="stat",
            thresholds=((1, "red"),),
        ),
        width=6,
    )
    layout.add(
        panel(
            "Job runs by result",
            "Scheduled job runs: success, failure, timeout, skipped.",
            [
                (
                    "sum by (job_name, result) "
                    f"(increase(jada_agent_job_runs_total{{{o}}}[$__rate_interval]))",
                    "{{job_name}} {{result}}",
                )
            ],
            "short",
            stack=True,
            bars=True,
        ),
        width=12,
    )
    layout.add(
        panel(
            "Time since last success",
            "Per job; red is where JadaSyncJobStale fires for a 30-minute job "
            "(two intervals plus the grace).",
            [
                (
                    f"time() - max by (job_name) (jada_agent_job_last_success_timestamp_seconds{{{o}}})",
                    "{{job_name}}",
                )
            ],
            "s",
            kind="stat",
            thresholds=((stale_30m_job, "red"),),
        ),
        width=6,
    )
    layout.add(
        panel(
            "Job duration (p95)",
            "How long job runs take.",
            [
                (
                    "histogram_quantile(0.95, sum by (job_name, le) "
                    f"(rate(jada_agent_job_duration_seconds_bucket{{{o}}}[$__rate_interval])))",
                    "{{job_name}}",
                )
            ],
            "s",
        ),
        width=6,
    )
    layout.row("Claude API")
    layout.add(
        panel(
            "Requests by outcome",
            "Messages API calls: success, rate_limited, overloaded, server_error and the other errors.",
            [
                (
                    f"sum by (outcome) (rate(jada_agent_llm_requests_total{{{o}}}[$__rate_interval]))",
                    "{{outcome}}",
                )
            ],
            "reqps",
            stack=True,
        ),
        width=8,
    )
    layout.add(
        panel(
            "Error ratio",
            "Share of requests that did not succeed; JadaLLMErrorsHigh fires above the line.",
            [
                (
                    f'sum(rate(jada_agent_llm_requests_total{{{o},outcome!="success"}}[{p["llm_window"]}]))'
                    f" / sum(rate(jada_agent_llm_requests_total{{{o}}}[{p['llm_window']}]))",
                    "errors",
                )
            ],
            "percentunit",
            thresholds=((p["llm_error_ratio"], "red"),),
        ),
        width=8,
    )
    layout.add(
        panel(
            "Request duration (p95)",
            "Messages API latency.",
            [
                (
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(jada_agent_llm_request_duration_seconds_bucket{{{o}}}[$__rate_interval])))",
                    "p95",
                )
            ],
            "s",
        ),
        width=8,
    )
    layout.add(
        panel(
            "Tokens by type",
            "Input, output, cache read and cache creation tokens per second.",
            [
                (
                    f"sum by (token_type) (rate(jada_agent_llm_tokens_total{{{o}}}[$__rate_interval]))",
                    "{{token_type}}",
                )
            ],
            "short",
            stack=True,
        ),
        width=12,
    )
    layout.add(
        panel(
            "Prompt cache hit ratio",
            "Cache-read input tokens over all input tokens.",
            [
                (
                    f'sum(rate(jada_agent_llm_tokens_total{{{o},token_type="cache_read"}}[$__rate_interval]))'
                    " / sum(rate(jada_agent_llm_tokens_total"
                    f'{{{o},token_type=~"input|cache_read|cache_creation"}}[$__rate_interval]))',
                    "hit ratio",
                )
            ],
            "percentunit",
        ),
        width=12,
    )
    return dashboard(
        "jada-agent-overview",
        "jada-agent / Overview",
        "Sessions and budgets, the queue, credentials and jobs, and the Claude API.",
        p["orch"],
        layout,
    )


def host(p: dict[str, Any]) -> dict[str, Any]:
    """Build the host and sidecar dashboard: resources, unit, Lightsail, the exporter itself."""
    e = p["exp"] + ',instance=~"$instance"'
    fs = f"{e},{p['fs']}"
    layout = Layout()
    layout.row("Host")
    layout.add(
        panel(
            "CPU busy",
            "Share of CPU time not idle, all CPUs.",
            [
                (
                    "1 - sum by (instance) "
                    f'(rate(jada_host_cpu_seconds_total{{{e},mode="idle"}}[$__rate_interval]))'
                    f" / sum by (instance) (rate(jada_host_cpu_seconds_total{{{e}}}[$__rate_interval]))",
                    "{{instance}}",
                )
            ],
            "percentunit",
        )
    )
    layout.add(
        panel(
            "Memory available",
            "Available over total memory; JadaHostMemoryLow fires below the line.",
            [
                (
                    f"jada_host_memory_available_bytes{{{e}}} / jada_host_memory_total_bytes{{{e}}}",
                    "{{instance}}",
                )
            ],
            "percentunit",
            thresholds=((p["memory_available_ratio"], "green"),),
            base="red",
        )
    )
    layout.add(
        panel(
            "Load",
            "Load averages over 1, 5 and 15 minutes.",
            [
                (f"jada_host_load1{{{e}}}", "1m {{instance}}"),
                (f"jada_host_load5{{{e}}}", "5m {{instance}}"),
                (f"jada_host_load15{{{e}}}", "15m {{instance}}"),
            ],
            "short",
        )
    )
    layout.add(
        panel(
            "Filesystem free",
            "Available over size per mountpoint; JadaHostDiskFillingUp needs this below the line "
            "and a falling trend.",
            [
                (
                    f"jada_host_filesystem_available_bytes{{{fs}}} / jada_host_filesystem_size_bytes{{{fs}}}",
                    "{{mountpoint}}",
                )
            ],
            "percentunit",
            thresholds=((p["disk_available_ratio"], "green"),),
            base="red",
        ),
        width=12,
    )
    layout.add(
        panel(
            "Filesystem available",
            "Bytes available per mountpoint.",
            [(f"jada_host_filesystem_available_bytes{{{fs}}}", "{{mountpoint}}")],
            "bytes",
        ),
        width=6,
    )
    layout.add(
        panel(
            "Uptime",
            "Time since the host booted.",
            [(f"time() - jada_host_boot_time_seconds{{{e}}}", "{{instance}}")],
            "s",
            kind="stat",
        ),
        width=6,
    )
    layout.row("jada-agent.service")
    layout.add(
        panel(
            "Unit state",
            "The systemd unit's active state.",
            [(f"max by (unit, state) (jada_unit_state{{{e}}}) == 1", "{{unit}} {{state}}")],
            "none",
            kind="stat",
        ),
        width=6,
    )
    layout.add(
        panel(
            f"Restarts ({p['crashloop_window']})",
            "Unit restarts in the crash-loop window; JadaServiceCrashlooping fires at red.",
            [
                (
                    f"sum by (unit) (increase(jada_unit_restarts_total{{{e}}}[{p['crashloop_window']}]))",
                    "{{unit}}",
                )
            ],
            "short",
            thresholds=((p["crashloop_restarts"], "red"),),
        ),
        width=6,
    )
    layout.add(
        panel(
            "Unit CPU",
            "CPU seconds per second used by the unit's main process.",
            [(f"sum by (unit) (rate(jada_unit_cpu_seconds_total{{{e}}}[$__rate_interval]))", "{{unit}}")],
            "percentunit",
        ),
        width=6,
    )
    layout.add(
        panel(
            "Unit memory",
            "Resident memory of the unit's main process.",
            [(f"sum by (unit) (jada_unit_memory_rss_bytes{{{e}}})", "{{unit}}")],
            "bytes",
        ),
        width=6,
    )
    layout.add(
        panel(
            "Unit uptime",
            "Time since the unit last started.",
            [(f"time() - max by (unit) (jada_unit_start_time_seconds{{{e}}})", "{{unit}}")],
            "s",
            kind="stat",
        ),
        width=24,
        height=4,
    )
    layout.row("Lightsail")
    layout.add(
        panel(
            "Status checks failed",
            "1 while AWS reports the instance or system status check failing.",
            [
                (
                    f"max by (instance_name, check) (jada_lightsail_status_check_failed{{{e}}})",
                    "{{instance_name}} {{check}}",
                )
            ],
            "none",
            kind="stat",
            thresholds=((1, "red"),),
        )
    )
    layout.add(
        panel(
            "CPU burst capacity",
            "Share of the CPU burst capacity left; JadaLightsailBurstCapacityLow fires below the line.",
            [(f"jada_lightsail_burst_capacity_ratio{{{e}}}", "{{instance_name}}")],
            "percentunit",
            thresholds=((p["burst_capacity_ratio"], "green"),),
            base="red",
        )
    )
    layout.add(
        panel(
            "CPU utilization (AWS)",
            "CPU utilization as CloudWatch reports it for the instance.",
            [(f"jada_lightsail_cpu_utilization_ratio{{{e}}}", "{{instance_name}}")],
            "percentunit",
        )
    )
    layout.row("Sidecar exporter")
    layout.add(
        panel(
            "Collector success",
            "1 when the collector's last scrape worked.",
            [(f"min by (collector) (jada_exporter_collector_success{{{e}}})", "{{collector}}")],
            "none",
            kind="stat",
            thresholds=((1, "green"),),
            base="red",
        )
    )
    layout.add(
        panel(
            "Collector duration",
            "How long each collector takes at scrape time.",
            [(f"max by (collector) (jada_exporter_collector_duration_seconds{{{e}}})", "{{collector}}")],
            "s",
        )
    )
    layout.add(
        panel(
            "Journal last entry age",
            "Age of the newest journal entry read; JadaJournalReaderStalled fires at red.",
            [(f"time() - jada_journal_last_entry_timestamp_seconds{{{e}}}", "{{instance}}")],
            "s",
            kind="stat",
            thresholds=((p["journal_silence_seconds"], "red"),),
        )
    )
    layout.add(
        panel(
            "Journal entries read",
            "Entries per second by unit and priority.",
            [
                (
                    f"sum by (unit, priority) (rate(jada_journal_entries_total{{{e}}}[$__rate_interval]))",
                    "{{unit}} {{priority}}",
                )
            ],
            "ops",
            stack=True,
        ),
        width=12,
    )
    layout.add(
        panel(
            "Journal events",
            "Sync failures, session exits and cursor resets counted from the journal.",
            [
                (
                    "sum by (component) "
                    f"(increase(jada_journal_sync_failures_total{{{e}}}[$__rate_interval]))",
                    "sync failed {{component}}",
                ),
                (
                    f"sum by (reason) (increase(jada_journal_session_exits_total{{{e}}}[$__rate_interval]))",
                    "exit {{reason}}",
                ),
                (
                    f"sum(increase(jada_journal_cursor_resets_total{{{e}}}[$__rate_interval]))",
                    "cursor resets",
                ),
            ],
            "short",
            bars=True,
        ),
        width=12,
    )
    return dashboard(
        "jada-agent-host",
        "jada-agent / Host and sidecar",
        "The host, the jada-agent unit, Lightsail and the sidecar exporter's own health.",
        p["exp"],
        layout,
    )


def render_all(params: dict[str, Any]) -> dict[str, str]:
    """Return each dashboard's file name and JSON text."""
    return {
        f"{board['uid']}.json": json.dumps(board, indent=2, sort_keys=False) + "\n"
        for board in (overview(params), host(params))
    }


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with --check report whether they are up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a dashboard is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all(load_config()).items():
        path = DASHBOARDS_DIR / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        print(
            f"out of date: {', '.join(stale)}; run .venv/bin/python dashboards/generate.py", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
