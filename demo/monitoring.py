"""Run the real Prometheus and Alertmanager for the stack, on 127.0.0.1, from rendered configs.

The configs are rendered from the project's own (deploy/prometheus/prometheus.yml,
alerts/alertmanager.yml) for a demo that must page within seconds, not minutes:

- Prometheus scrapes and evaluates every second; each scrape job keeps its labels (the
  ``instance`` that inhibitions match on) but points at the stack's ports; rule files and the
  Alertmanager are the stack's.
- Alertmanager keeps its routing, grouping, matchers and inhibitions; group_wait and
  group_interval are cut to 1s on the root route and wherever a sub-route sets a longer one
  (repeat_interval stays, so a page is not repeated every second); every webhook posts to
  the local receiver at ``<receiver_url>/<receiver name>``, so a page shows its receiver.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from demo.processes import StackError, Supervisor, allocate_ports, check_port_free, wait_for_http

PROMETHEUS = Path("/usr/bin/prometheus")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
ROUTE_TIMINGS = ("group_wait", "group_interval", "repeat_interval")
STACK_ROUTE_TIMINGS = {"group_wait": "1s", "group_interval": "1s"}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class MonitoringConfigError(StackError):
    """A Prometheus or Alertmanager config the stack cannot run with; the message names the key."""


def parse_duration(text: str) -> float:
    """Return the seconds in a Prometheus duration such as ``1m30s``; raise ValueError if malformed."""
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m)")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _load(source: str, source_name: str) -> dict[str, Any]:
    try:
        config = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise MonitoringConfigError(f"{source_name}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise MonitoringConfigError(f"{source_name}: not a YAML mapping")
    return config


def render_prometheus_config(
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path],
    alertmanager: str,
    source: str | None = None,
    source_name: str = "prometheus.yml",
    interval: str = "1s",
) -> str:
    """Return prometheus.yml scraping ``targets`` (job -> host:port list), alerting ``alertmanager``.

    With ``source``, a job of the same name there lends its settings and target labels.
    """
    base = _load(source, source_name) if source is not None else {}
    templates = {job.get("job_name"): job for job in base.get("scrape_configs") or []}
    scrape_configs = []
    for job, hosts in targets.items():
        template = dict(templates.get(job) or {"job_name": job})
        # The stack's interval rules; a job's own would slow it back down.
        template.pop("scrape_interval", None)
        template.pop("scrape_timeout", None)
        static = (template.get("static_configs") or [{}])[0]
        template["static_configs"] = [{**static, "targets": list(hosts)}]
        scrape_configs.append(template)
    config = {
        **base,
        "global": {
            **(base.get("global") or {}),
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "rule_files": [str(Path(path).resolve()) for path in rule_files],
        "scrape_configs": scrape_configs,
    }
    return yaml.safe_dump(config, sort_keys=False)


def render_alertmanager_config(
    source: str,
    receiver_url: str,
    timings: Mapping[str, str] = STACK_ROUTE_TIMINGS,
    source_name: str = "alertmanager.yml",
) -> str:
    """Return ``source`` with route timings no longer than ``timings`` and webhooks to ``receiver_url``."""
    unknown = set(timings) - set(ROUTE_TIMINGS)
    if unknown:
        raise MonitoringConfigError(f"unknown route timing {sorted(unknown)}; use {', '.join(ROUTE_TIMINGS)}")
    config = _load(source, source_name)
    if not isinstance(config.get("route"), dict):
        raise MonitoringConfigError(f"{source_name}: route: missing; Alertmanager needs a root route")
    _shorten_route(config["route"], timings, "route", source_name)
    for index, receiver in enumerate(config.get("receivers") or []):
        if not isinstance(receiver, dict) or not receiver.get("name"):
            raise MonitoringConfigError(
                f"{source_name}: receivers[{index}].name: missing; name every receiver"
            )
        for webhook in receiver.get("webhook_configs") or []:
            webhook.pop("url_file", None)
            webhook["url"] = f"{receiver_url.rstrip('/')}/{urllib.parse.quote(receiver['name'])}"
    return yaml.safe_dump(config, sort_keys=False)


def _shorten_route(route: dict[str, Any], timings: Mapping[str, str], where: str, source_name: str) -> None:
    for key, wanted in timings.items():
        current = route.get(key)
        # Sub-routes inherit from the root, so the root always gets the timing; a sub-route
        # only where it sets a longer one of its own.
        if current is None and where != "route":
            continue
        try:
            if current is None or parse_duration(str(current)) > parse_duration(wanted):
                route[key] = wanted
        except ValueError as exc:
            raise MonitoringConfigError(f"{source_name}: {where}.{key}: {exc}") from None
    for index, child in enumerate(route.get("routes") or []):
        _shorten_route(child, timings, f"{where}.routes[{index}]", source_name)


@dataclass(frozen=True)
class Monitoring:
    """Running Prometheus and Alertmanager, with the queries the demo and its tests ask."""

    prometheus_url: str
    alertmanager_url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Return the result vector of an instant PromQL query."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        return _get_json(url)["data"]["result"]

    def alerts(self) -> list[dict[str, Any]]:
        """Return Prometheus's active alerts (pending and firing)."""
        return _get_json(f"{self.prometheus_url}/api/v1/alerts")["data"]["alerts"]

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        """Return the alerts Alertmanager holds."""
        return _get_json(f"{self.alertmanager_url}/api/v2/alerts")

    def wait_for_alert(self, name: str, state: str, deadline: float, poll_seconds: float = 0.2) -> list[dict]:
        """Poll until alert ``name`` is in ``state`` (pending, firing, or inactive); return its alerts."""
        while True:
            matching = [a for a in self.alerts() if a["labels"].get("alertname") == name]
            if state == "inactive" and not matching:
                return []
            in_state = [a for a in matching if a["state"] == state]
            if in_state:
                return in_state
            if time.monotonic() > deadline:
                seen = ", ".join(a["state"] for a in matching) or "no alert"
                raise TimeoutError(f"alert {name} did not become {state} in time (now: {seen})")
            time.sleep(poll_seconds)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _read_source(config: Path | str, default_name: str) -> tuple[str, str]:
    if not isinstance(config, Path):
        return config, default_name
    try:
        return config.read_text(), str(config)
    except OSError as exc:
        raise MonitoringConfigError(f"{config}: cannot read: {exc.strerror}") from None


@contextmanager
def running_monitoring(
    supervisor: Supervisor,
    workdir: Path,
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path],
    alertmanager_config: Path | str,
    receiver_url: str,
    prometheus_config: Path | str | None = None,
    prometheus_port: int = 0,
    alertmanager_port: int = 0,
    start_seconds: float = 30.0,
) -> Iterator[Monitoring]:
    """Start Alertmanager then Prometheus (port 0: a free one) and stop both after the block.

    ``alertmanager_config`` and ``prometheus_config`` are files, or their text; the running
    copies are rendered from them (without ``prometheus_config``, plain scrape jobs).
    """
    wanted = {"prometheus": prometheus_port, "alertmanager": alertmanager_port}
    for port in wanted.values():
        if port:
            check_port_free(port)
    ports = wanted | allocate_ports([name for name, port in wanted.items() if not port])
    prometheus_port, alertmanager_port = ports["prometheus"], ports["alertmanager"]
    workdir.mkdir(parents=True, exist_ok=True)
    # A last run's data would haunt this one: its series can fire alerts, and Alertmanager's
    # notification log would hold back a page it already sent.
    for data in ("prometheus-data", "alertmanager-data"):
        shutil.rmtree(workdir / data, ignore_errors=True)
    am_file = workdir / "alertmanager.yml"
    am_source, am_name = _read_source(alertmanager_config, "alertmanager.yml")
    am_file.write_text(render_alertmanager_config(am_source, receiver_url, source_name=am_name))
    prom_source, prom_name = (
        (None, "prometheus.yml")
        if prometheus_config is None
        else _read_source(prometheus_config, "prometheus.yml")
    )
    prom_file = workdir / "prometheus.yml"
    prom_file.write_text(
        render_prometheus_config(
            targets, rule_files, f"127.0.0.1:{alertmanager_port}", source=prom_source, source_name=prom_name
        )
    )
    am_url = f"http://127.0.0.1:{alertmanager_port}"
    prom_url = f"http://127.0.0.1:{prometheus_port}"
    started = []
    try:
        alertmanager = supervisor.start(
            "alertmanager",
            [
                str(ALERTMANAGER),
                f"--config.file={am_file}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                # An empty address turns off the gossip cluster, which would listen on 0.0.0.0:9094.
                "--cluster.listen-address=",
            ],
        )
        started.append(alertmanager)
        prometheus = supervisor.start(
            "prometheus",
            [
                str(PROMETHEUS),
                f"--config.file={prom_file}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                # Re-send firing alerts every second, not every minute, so a restarted
                # Alertmanager learns of them at once.
                "--rules.alert.resend-delay=1s",
            ],
        )
        started.append(prometheus)
        deadline = time.monotonic() + start_seconds
        wait_for_http(f"{am_url}/-/ready", deadline, alertmanager)
        wait_for_http(f"{prom_url}/-/ready", deadline, prometheus)
        yield Monitoring(prom_url, am_url)
    finally:
        for child in reversed(started):
            supervisor.stop(child)
