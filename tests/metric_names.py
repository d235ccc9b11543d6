"""Which metric names alerts and dashboards use, which the programs export, and whether PromQL parses."""

from __future__ import annotations

import re
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

CONTRACT_PATH = Path(__file__).with_name("metric_names.txt")

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

    The source is the contract file; a live scrape of both programs' /metrics can
    replace it here without touching the tests that use it.
    """
    lines = CONTRACT_PATH.read_text().splitlines()
    exported = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    return frozenset(exported) | PROMETHEUS_NAMES


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
