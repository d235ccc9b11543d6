"""The Grafana dashboards: generated, conventional, drawing alert thresholds, querying only real metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from metric_names import known_metric_names, metric_names_in, promtool_parse_errors

REPO = Path(__file__).resolve().parent.parent
DASHBOARDS = REPO / "dashboards"
UIDS = {"jada-agent-overview.json": "jada-agent-overview", "jada-agent-host.json": "jada-agent-host"}
THRESHOLDS = yaml.safe_load((REPO / "alerts" / "config.yaml").read_text())["thresholds"]


def _dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def _panels(board: dict) -> list[dict]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def _all_panels() -> list[dict]:
    return [panel for board in _dashboards().values() for panel in _panels(board)]


def _exprs() -> list[str]:
    return [target["expr"] for panel in _all_panels() for target in panel["targets"]]


def _panel(title: str) -> dict:
    (panel,) = [panel for panel in _all_panels() if panel["title"] == title]
    return panel


def _threshold_values(panel: dict) -> list[float]:
    return [step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]


def test_committed_dashboards_match_what_the_generator_gives() -> None:
    result = subprocess.run(
        [sys.executable, str(DASHBOARDS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_dashboards_have_stable_uids() -> None:
    assert {name: board["uid"] for name, board in _dashboards().items()} == UIDS


@pytest.mark.parametrize("name", sorted(UIDS))
def test_datasource_and_instance_are_template_variables(name: str) -> None:
    board = _dashboards()[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["datasource"]["uid"] == "${datasource}"
    assert "label_values(up{job=" in variables["instance"]["definition"]
    for panel in _panels(board):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]), panel["title"]


def test_every_panel_has_a_unit_a_description_and_a_query() -> None:
    for panel in _all_panels():
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    for name, board in _dashboards().items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        cells = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & area, f"{name}: {panel['title']} overlaps another panel"
            cells |= area


def test_every_panel_expression_parses() -> None:
    assert promtool_parse_errors(_exprs()) == ""


def test_a_broken_expression_is_reported() -> None:
    assert "parse error" in promtool_parse_errors(["sum(rate(jada_agent_tasks[5m])"])


def test_every_metric_a_panel_uses_is_exported() -> None:
    used = {name for expr in _exprs() for name in metric_names_in(expr)}
    assert used - known_metric_names() == set()


def test_every_orchestrator_and_sidecar_panel_filters_by_the_instance_variable() -> None:
    for panel in _all_panels():
        assert any('instance=~"$instance"' in t["expr"] for t in panel["targets"]), panel["title"]


@pytest.mark.parametrize(
    ("title", "threshold"),
    [
        ("Exits at the turn limit (24h)", THRESHOLDS["turn_limit_exit_share"]),
        ("Oldest needs-you task waiting", 4 * 3600),
        ("Error ratio", THRESHOLDS["llm_error_ratio"]),
        ("Memory available", THRESHOLDS["memory_available_ratio"]),
        ("Filesystem free", THRESHOLDS["disk_available_ratio"]),
        ("CPU burst capacity", THRESHOLDS["burst_capacity_ratio"]),
        ("Restarts (15m)", THRESHOLDS["crashloop_restarts"]),
        ("Journal last entry age", 3600),
        ("Time since last success", 2 * 1800 + 300),
        ("Status checks failed", 1),
        ("Credential health", 1),
        ("Credential file insecure", 1),
        ("Collector success", 1),
    ],
)
def test_panels_draw_the_threshold_of_their_alert(title: str, threshold: float) -> None:
    assert _threshold_values(_panel(title)) == [threshold]


def test_the_overview_shows_what_the_issue_lists() -> None:
    titles = {panel["title"] for panel in _panels(_dashboards()["jada-agent-overview.json"])}
    assert {
        "Sessions today",
        "Turns per session",
        "Session exits by reason",
        "Tasks by state",
        "Needs you",
        "Token refresh errors",
        "Credential health",
        "Job runs by result",
        "Time since last success",
        "Requests by outcome",
        "Error ratio",
        "Tokens by type",
        "Prompt cache hit ratio",
    } <= titles


def test_turns_per_session_is_a_histogram_of_the_turn_buckets() -> None:
    (target,) = _panel("Turns per session")["targets"]
    assert "jada_agent_session_turns_bucket" in target["expr"]
    assert target["format"] == "heatmap"
    assert target["legendFormat"] == "{{le}}"


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    datasources = yaml.safe_load((DASHBOARDS / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == (
        "prometheus",
        "http://127.0.0.1:9090",
        True,
    )
    providers = yaml.safe_load((DASHBOARDS / "provisioning" / "dashboards" / "jada-agent.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
