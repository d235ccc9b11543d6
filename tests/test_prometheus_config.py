"""The shipped Prometheus configurations: promtool accepts them, and a real Prometheus pages with them."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from demo.processes import free_port

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
SINGLE_HOST = PROMETHEUS_DIR / "prometheus.yml"
LIGHTSAIL = PROMETHEUS_DIR / "prometheus-lightsail.yml"
ALERTS_CONFIG = REPO / "alerts" / "config.yaml"

# The sidecar's /metrics on the seed's day: the plain "[port-sheet] token error: HTTP Error
# 400" line counted by the journal collector.
SEED_SIDECAR_METRICS = b"""\
# HELP jada_journal_token_errors_total Token refresh errors seen in the journal.
# TYPE jada_journal_token_errors_total counter
jada_journal_token_errors_total{component="port-sheet",status_code="400"} 3
"""


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", [SINGLE_HOST, LIGHTSAIL], ids=lambda p: p.name)
def test_promtool_check_config_is_clean(path: Path) -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


@pytest.mark.parametrize("path", [SINGLE_HOST, LIGHTSAIL], ids=lambda p: p.name)
def test_configs_load_the_generated_rules_and_send_to_alertmanager(path: Path) -> None:
    config = _load(path)
    assert [(path.parent / f).resolve() for f in config["rule_files"]] == [REPO / "alerts" / "rules.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]


@pytest.mark.parametrize("path", [SINGLE_HOST, LIGHTSAIL], ids=lambda p: p.name)
def test_scrape_job_names_are_the_selectors_of_the_alerts(path: Path) -> None:
    selectors = _load(ALERTS_CONFIG)["selectors"]
    jobs = [job["job_name"] for job in _load(path)["scrape_configs"]]
    assert [f'job="{job}"' for job in jobs] == [selectors["orchestrator"], selectors["exporter"]]


def test_single_host_scrapes_both_programs_on_loopback_under_one_instance_name() -> None:
    jobs = {job["job_name"]: job["static_configs"][0] for job in _load(SINGLE_HOST)["scrape_configs"]}
    assert jobs["jada-agent"]["targets"] == ["127.0.0.1:9741"]
    assert jobs["jada-exporter"]["targets"] == ["127.0.0.1:9742"]
    assert jobs["jada-agent"]["labels"]["instance"] == jobs["jada-exporter"]["labels"]["instance"]


def test_lightsail_variant_discovers_instances_and_names_them() -> None:
    for job in _load(LIGHTSAIL)["scrape_configs"]:
        assert job["lightsail_sd_configs"][0]["port"] in (9741, 9742)
        relabel = {rule.get("target_label"): rule for rule in job["relabel_configs"]}
        assert relabel["instance"]["source_labels"] == ["__meta_lightsail_instance_name"]


# A real Prometheus with the shipped configuration, its targets pointed at local servers.


class _Sidecar(ThreadingHTTPServer):
    """Serve a fixed /metrics text, like the sidecar on the seed's day."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _MetricsHandler)


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(SEED_SIDECAR_METRICS)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """Run Prometheus on the single-host config: sidecar served locally, orchestrator unreachable."""
    sidecar = _Sidecar()
    threading.Thread(target=sidecar.serve_forever, daemon=True).start()
    config = _load(SINGLE_HOST)
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str((SINGLE_HOST.parent / f).resolve()) for f in config["rule_files"]]
    targets = {"jada-agent": f"127.0.0.1:{free_port()}", "jada-exporter": f"127.0.0.1:{sidecar.server_port}"}
    for job in config["scrape_configs"]:
        job["static_configs"][0]["targets"] = [targets[job["job_name"]]]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            "/usr/bin/prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)
        sidecar.shutdown()
        sidecar.server_close()


def _firing(url: str, name: str) -> list[dict]:
    try:
        alerts = _get(f"{url}/api/v1/alerts")["data"]["alerts"]
    except OSError:
        return []
    return [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == "firing"]


def test_seed_token_errors_in_the_journal_page_while_the_orchestrator_is_down(prometheus: str) -> None:
    deadline = time.monotonic() + 60
    while not (alerts := _firing(prometheus, "JadaTokenRefreshFailing")):
        assert time.monotonic() < deadline, "JadaTokenRefreshFailing did not fire within 60s"
        time.sleep(0.2)
    assert [a["labels"] for a in alerts] == [
        {
            "alertname": "JadaTokenRefreshFailing",
            "component": "port-sheet",
            "instance": "jada-agent",
            "severity": "critical",
            "source": "journal",
            "status_code": "400",
        }
    ]
    query = urllib.parse.urlencode({"query": 'up{job="jada-agent"}'})
    assert _get(f"{prometheus}/api/v1/query?{query}")["data"]["result"][0]["value"][1] == "0"
