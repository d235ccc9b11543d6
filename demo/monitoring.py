"""Run the real Prometheus and Alertmanager for the stack, on 127.0.0.1, from rendered configs.

The configs are rendered for a demo that must page within seconds, not minutes: Prometheus
scrapes and evaluates every second, and the Alertmanager copy has its route timings
shortened (group_wait and group_interval 1s on the root route and wherever a sub-route sets
them) and every webhook receiver pointed at the local receiver, at ``<receiver_url>/<name>``
so a page shows which receiver it went to. Routing, grouping and matchers stay as written.
"""

from __future__ import annotations

import json
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


class MonitoringConfigError(StackError):
    """An Alertmanager config the stack cannot run with; the message names the key."""


def render_prometheus_config(
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path],
    alertmanager: str,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> str:
    """Return prometheus.yml scraping ``targets`` (job -> host:port list), alerting ``alertmanager``."""
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "rule_files": [str(Path(path).resolve()) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(hosts)}]} for job, hosts in targets.items()
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def render_alertmanager_config(
    source: str,
    receiver_url: str,
    timings: Mapping[str, str] | None = None,
    source_name: str = "alertmanager.yml",
) -> str:
    """Return ``source`` with shortened route timings and every webhook posting to ``receiver_url``."""
    timings = {"group_wait": "1s", "group_interval": "1s"} if timings is None else dict(timings)
    unknown = set(timings) - set(ROUTE_TIMINGS)
    if unknown:
        raise MonitoringConfigError(f"unknown route timing {sorted(unknown)}; use {', '.join(ROUTE_TIMINGS)}")
    try:
        config = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise MonitoringConfigError(f"{source_name}: not valid YAML: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("route"), dict):
        raise MonitoringConfigError(f"{source_name}: route: missing; Alertmanager needs a root route")
    _shorten_route(config["route"], timings, root=True)
    for index, receiver in enumerate(config.get("receivers") or []):
        if not isinstance(receiver, dict) or not receiver.get("name"):
            raise MonitoringConfigError(
                f"{source_name}: receivers[{index}].name: missing; name every receiver"
            )
        for webhook in receiver.get("webhook_configs") or []:
            webhook.pop("url_file", None)
            webhook["url"] = f"{receiver_url.rstrip('/')}/{urllib.parse.quote(receiver['name'])}"
    return yaml.safe_dump(config, sort_keys=False)


def _shorten_route(route: dict[str, Any], timings: Mapping[str, str], root: bool) -> None:
    for key, value in timings.items():
        # Sub-routes inherit from the root; only override where they set their own.
        if root or key in route:
            route[key] = value
    for child in route.get("routes") or []:
        _shorten_route(child, timings, root=False)


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


@contextmanager
def running_monitoring(
    supervisor: Supervisor,
    workdir: Path,
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path],
    alertmanager_config: Path | str,
    receiver_url: str,
    prometheus_port: int = 0,
    alertmanager_port: int = 0,
    start_seconds: float = 30.0,
) -> Iterator[Monitoring]:
    """Start Alertmanager then Prometheus (port 0: a free one) and stop both after the block.

    ``alertmanager_config`` is a file, or its text; the running copy is rendered from it.
    """
    wanted = {"prometheus": prometheus_port, "alertmanager": alertmanager_port}
    for port in wanted.values():
        if port:
            check_port_free(port)
    ports = wanted | allocate_ports([name for name, port in wanted.items() if not port])
    prometheus_port, alertmanager_port = ports["prometheus"], ports["alertmanager"]
    workdir.mkdir(parents=True, exist_ok=True)
    am_file = workdir / "alertmanager.yml"
    if isinstance(alertmanager_config, Path):
        try:
            source, source_name = alertmanager_config.read_text(), str(alertmanager_config)
        except OSError as exc:
            raise MonitoringConfigError(f"{alertmanager_config}: cannot read: {exc.strerror}") from None
    else:
        source, source_name = alertmanager_config, "alertmanager.yml"
    am_file.write_text(render_alertmanager_config(source, receiver_url, source_name=source_name))
    prom_file = workdir / "prometheus.yml"
    prom_file.write_text(render_prometheus_config(targets, rule_files, f"127.0.0.1:{alertmanager_port}"))
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
