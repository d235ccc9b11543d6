"""The alert rules: generated from one config, checked and unit-tested by promtool, documented."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from metric_names import known_metric_names, metric_names_in

REPO = Path(__file__).resolve().parent.parent
ALERTS = REPO / "alerts"
RULES = ALERTS / "rules.yml"

DESIGN_ALERTS = {
    "JadaTokenRefreshFailing",
    "JadaSyncJobStale",
    "JadaSessionsHittingTurnLimit",
    "JadaDailySessionBudgetExhausted",
    "JadaNeedsYouTaskWaiting",
    "JadaOrchestratorDown",
    "JadaExporterDown",
    "JadaServiceCrashlooping",
    "JadaLLMErrorsHigh",
    "JadaHostMemoryLow",
    "JadaHostDiskFillingUp",
    "JadaLightsailStatusCheckFailed",
    "JadaLightsailBurstCapacityLow",
    "JadaJournalReaderStalled",
    "JadaCredentialFileInsecure",
    "Watchdog",
}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alerts_generate", ALERTS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False, cwd=ALERTS)


def test_committed_rules_match_what_the_config_generates() -> None:
    result = subprocess.run(
        [sys.executable, str(ALERTS / "generate.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_promtool_check_rules_is_clean() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rule_tests_pass() -> None:
    tests = sorted(str(p) for p in (ALERTS / "tests").glob("*.yml"))
    result = _promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_design_alert_is_defined_and_nothing_else() -> None:
    assert {rule["alert"] for rule in _rules()} == DESIGN_ALERTS


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_for_severity_and_annotations(rule: dict) -> None:
    assert "for" in rule
    assert rule["labels"]["severity"] in {"critical", "warning", "info", "none"}
    assert rule["alert"] == "Watchdog" or rule["labels"]["severity"] != "none"
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
    assert rule["annotations"]["runbook_url"].endswith(f"/{rule['alert']}.md")


@pytest.mark.parametrize("name", sorted(DESIGN_ALERTS))
def test_every_alert_has_a_runbook_saying_how_to_confirm_and_fix(name: str) -> None:
    runbook = (ALERTS / "runbooks" / f"{name}.md").read_text()
    assert runbook.startswith(f"# {name}\n")
    assert "## Confirm" in runbook
    assert "## Fix" in runbook
    assert "```sh" in runbook


def _rule_test_cases() -> list[tuple[str, dict]]:
    cases = []
    for path in sorted((ALERTS / "tests").glob("*.yml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.append((test["name"], case))
    return cases


@pytest.mark.parametrize("name", sorted(DESIGN_ALERTS))
def test_every_alert_has_a_firing_case_with_annotations_and_a_silent_case(name: str) -> None:
    cases = [case for _, case in _rule_test_cases() if case["alertname"] == name]
    firing = [alert for case in cases for alert in case["exp_alerts"]]
    assert firing, f"no promtool case where {name} fires"
    assert all(alert["exp_labels"].get("severity") and alert["exp_annotations"] for alert in firing)
    if name != "Watchdog":
        assert any(not case["exp_alerts"] for case in cases), f"no promtool case where {name} stays silent"


def test_every_metric_an_alert_uses_is_exported() -> None:
    used = {name for rule in _rules() for name in metric_names_in(rule["expr"])}
    assert used - known_metric_names() == set()


def test_job_selectors_come_from_the_config_alone(tmp_path: Path) -> None:
    generate = _generator()
    params = generate.load_config()
    params.update(orch='job="demo-agent"', exp='job="demo-exporter"')
    rendered = generate.render_rules(params)
    assert 'job="jada-agent"' not in rendered
    assert 'job="jada-exporter"' not in rendered
    assert rendered.count('job="demo-agent"') > 10
    (tmp_path / "rules.yml").write_text(rendered)
    assert _promtool("check", "rules", str(tmp_path / "rules.yml")).returncode == 0


def test_thresholds_come_from_the_config() -> None:
    generate = _generator()
    params = generate.load_config()
    params.update(needs_you_wait="2h", needs_you_wait_seconds=7200)
    rendered = generate.render_rules(params)
    assert 'jada_agent_needs_you_oldest_timestamp_seconds{job="jada-agent"} > 7200' in rendered
    assert "more than 2h;" in rendered


@pytest.mark.parametrize(
    ("duration", "expected"), [("65m", 3900), ("1h30m", 5400), ("24h", 86400), ("30s", 30), ("1d", 86400)]
)
def test_seconds_reads_prometheus_durations(duration: str, expected: int) -> None:
    assert _generator().seconds(duration) == expected


@pytest.mark.parametrize("duration", ["", "65", "5 m", "1.5h", "m5"])
def test_seconds_rejects_what_is_not_a_duration(duration: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        _generator().seconds(duration)


def test_metric_names_in_skips_functions_labels_and_keywords() -> None:
    expr = (
        'sum by (instance) (rate(a_total{outcome!="success",instance=~"$instance"}[$__rate_interval]))'
        ' / on (instance) group_left () b offset 5m > 1e3 and time() - c unless absent(up{job="x"})'
    )
    assert metric_names_in(expr) == {"a_total", "b", "c", "up"}


def test_metric_names_in_ignores_words_inside_strings() -> None:
    assert metric_names_in('x{reason="max_turns or error"}') == {"x"}


def test_runbook_links_point_at_the_committed_runbooks() -> None:
    base = yaml.safe_load((ALERTS / "config.yaml").read_text())["runbook_base_url"]
    for rule in _rules():
        url = rule["annotations"]["runbook_url"]
        assert re.fullmatch(re.escape(base) + r"/\w+\.md", url)
        assert (ALERTS / "runbooks" / url.rsplit("/", 1)[1]).is_file()
