"""The whole jada-agent stack on 127.0.0.1, as one context manager for the demo and the e2e test.

In start order: journald (the host's, or our own), the Claude and Google simulators in the
incident scenario (an expired refresh token), the webhook receiver, the sidecar reading the
journal for SYSLOG_IDENTIFIER=jada-agent, Alertmanager with the project's routing and
Prometheus with the project's rules and scrape jobs, and the orchestrator replaying the
seed's day. Leaving the block, by any path, stops them all in reverse order.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from demo import scenario
from demo.journald import Journal, running_journald
from demo.monitoring import Monitoring, running_monitoring
from demo.processes import Child, ChildFailed, Supervisor, allocate_ports, wait_for_http
from demo.receiver import Page, Receiver
from simulators.claude import ClaudeSimulator
from simulators.google import GoogleSimulator
from simulators.lightsail import LightsailSimulator

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "alerts" / "rules.yml"
ALERTMANAGER_CONFIG = REPO / "alerts" / "alertmanager.yml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
PORT_NAMES = (
    "orchestrator",
    "exporter",
    "prometheus",
    "alertmanager",
    "receiver",
    "claude",
    "google",
    "lightsail",
)
LIGHTSAIL_INSTANCE = "jada-agent"
LIGHTSAIL_REGION = "us-east-1"
JOURNAL_IDENTIFIER = "jada-agent"
# Never a real key: the Claude simulator only checks that one is sent.
DEMO_API_KEY = "sk-ant-demo-not-a-real-key"
START_SECONDS = 30.0

_BARE_SYNC = """
import sys
from systemd import journal
for line in sys.argv[1:]:
    journal.send(line, SYSLOG_IDENTIFIER="jada-agent", PRIORITY="3")
"""


@dataclass(frozen=True)
class StackOptions:
    """What to start and how fast: ``speed`` divides the seed's 30-minute sync and the rules' windows."""

    workdir: Path
    speed: float = 1.0
    sync_interval_seconds: float | None = None
    port_base: int | None = None
    start_orchestrator: bool = True
    out: TextIO | None = None

    @property
    def sync_interval(self) -> float:
        """Return the port-sheet sync's interval in seconds."""
        if self.sync_interval_seconds is not None:
            return self.sync_interval_seconds
        return scenario.SEED_INTERVAL_SECONDS / self.speed


class Stack:
    """The running stack: where everything is, and the moves of the scenario."""

    def __init__(
        self,
        options: StackOptions,
        ports: dict[str, int],
        supervisor: Supervisor,
        journal: Journal,
        claude: ClaudeSimulator,
        google: GoogleSimulator,
        lightsail: LightsailSimulator,
        receiver: Receiver,
    ) -> None:
        self.options = options
        self.ports = ports
        self.supervisor = supervisor
        self.journal = journal
        self.claude = claude
        self.google = google
        self.lightsail = lightsail
        self.receiver = receiver
        self.monitoring: Monitoring | None = None
        self.orchestrator: Child | None = None
        self.seed_queued = False
        self.exporter: Child | None = None
        self.workdir = options.workdir
        self.state_dir = self.workdir / "state"
        self.secrets_dir = self.workdir / "secrets"
        self.log_dir = self.workdir / "logs"
        self.config_path = self.workdir / "config.toml"

    @property
    def service_account_key(self) -> Path:
        """Return where the fix's service-account key is written."""
        return self.workdir / "service-account-key.json"

    def url(self, name: str) -> str:
        """Return the base URL of the part ``name`` (one of PORT_NAMES)."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def where(self) -> list[tuple[str, str]]:
        """Return (what, where) for each part a person may want to open."""
        return [
            ("orchestrator status page", f"{self.url('orchestrator')}/"),
            ("orchestrator metrics", f"{self.url('orchestrator')}/metrics"),
            ("sidecar metrics", f"{self.url('exporter')}/metrics"),
            ("Prometheus alerts", f"{self.url('prometheus')}/alerts"),
            ("Alertmanager", f"{self.url('alertmanager')}/"),
            ("webhook receiver", f"{self.url('receiver')}/"),
            ("Claude API simulator", self.claude.base_url),
            ("Google simulator", self.google.url),
            ("Lightsail API simulator", self.lightsail.url),
            ("journal files", str(self.journal.directory)),
            ("config", str(self.config_path)),
            ("process logs", str(self.log_dir)),
        ]

    def environment(self) -> dict[str, str]:
        """Return the environment the orchestrator and its commands run with."""
        env = {k: v for k, v in os.environ.items() if k not in ("JADA_SESSION_COMMAND", "JADA_AGENT_CONFIG")}
        env["ANTHROPIC_API_KEY"] = DEMO_API_KEY
        env["JADA_AGENT_CONFIG"] = str(self.config_path)
        return env

    def start_orchestrator(self) -> Child:
        """Start `jada-agent run` and wait until it serves /metrics."""
        if self.orchestrator is not None:
            return self.orchestrator
        child = self.supervisor.start(
            "jada-agent",
            [sys.executable, "-m", "orchestrator", "--config", str(self.config_path), "run"],
            env=self.environment(),
            cwd=self.workdir,
        )
        deadline = time.monotonic() + START_SECONDS
        wait_for_http(f"{self.url('orchestrator')}/metrics", deadline, child)
        self.orchestrator = child
        if not self.seed_queued:
            # Only once Prometheus has a sample from before the first session, so that
            # increase() sees the sessions' exits happen, as it would in 15 s scrapes of a real day.
            self.wait_for_scrape("jada_agent_build_info", deadline)
            scenario.queue_seed_day(self.state_dir / "jada-agent.db")
            self.seed_queued = True
        return child

    def wait_for_scrape(self, promql: str, deadline: float) -> None:
        """Wait until Prometheus has a sample for ``promql``; raise ChildFailed at ``deadline``."""
        while self.monitoring is not None and not self.monitoring.query(promql):
            if time.monotonic() > deadline:
                raise ChildFailed(f"Prometheus at {self.url('prometheus')} has no {promql} in time")
            time.sleep(0.1)

    def stop_orchestrator(self) -> None:
        """Stop the orchestrator (SIGTERM to its process group, as systemd would)."""
        if self.orchestrator is not None:
            self.supervisor.stop(self.orchestrator)
            self.orchestrator = None

    def write_bare_sync_failure(self, lines: int = 1) -> None:
        """Write the seed's plain token-error line to the journal from a bare process, as its script did."""
        subprocess.run(
            [sys.executable, "-c", _BARE_SYNC, *[scenario.SEED_TOKEN_ERROR_LINE] * lines],
            check=True,
            timeout=30,
        )

    def reauthenticate(self) -> subprocess.CompletedProcess[str]:
        """Run `jada-agent auth google` with a service-account key the Google simulator accepts."""
        key = self.google.new_service_account(scenario.SERVICE_ACCOUNT)
        key_file = scenario.write_secret(self.service_account_key, key)
        return subprocess.run(
            [
                *(sys.executable, "-m", "orchestrator", "--config", str(self.config_path)),
                *("auth", "google", "--service-account", str(key_file)),
            ],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def wait_for_page(self, alertname: str, status: str, deadline: float, **labels: str) -> Page:
        """Return the first page for ``alertname`` in ``status`` with ``labels`` before ``deadline``."""
        while True:
            for page in list(self.receiver.pages):
                if (
                    page.alertname == alertname
                    and page.status == status
                    and all(page.labels.get(k) == v for k, v in labels.items())
                ):
                    return page
            if time.monotonic() > deadline:
                seen = ", ".join(
                    f"{p.alertname}/{p.status}/{p.labels.get('source', '')}" for p in self.receiver.pages
                )
                raise TimeoutError(
                    f"no {status} page for {alertname} {labels} arrived; got {seen or 'nothing'}"
                )
            time.sleep(0.1)


def _reset_workdir(workdir: Path) -> None:
    # A last run's store, credentials and sidecar state would replay its story, not the seed's.
    for name in ("state", "secrets", "config.toml", "exporter-state.json", "service-account-key.json"):
        path = workdir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for log in (workdir / "logs").glob("*.log"):
        log.unlink()
    workdir.mkdir(parents=True, exist_ok=True)


def _set_up_google(sim: GoogleSimulator, secrets_dir: Path) -> None:
    """Give the simulator the seed's state: a sheet, and a stored refresh token that has expired."""
    sim.add_spreadsheet(scenario.SPREADSHEET_ID)
    info = sim.new_authorized_user(
        client_id="jada-demo.apps.googleusercontent.com", refresh_token=scenario.EXPIRED_REFRESH_TOKEN
    )
    scenario.write_secret(secrets_dir / "google.json", info)
    sim.revoke(scenario.EXPIRED_REFRESH_TOKEN)


def _rule_file(options: StackOptions) -> Path:
    if options.speed == 1:
        return RULES
    path = options.workdir / f"rules-speed-{options.speed:g}.yml"
    path.write_text(
        f"# alerts/rules.yml, every for:, range and offset divided by {options.speed:g} (demo/scenario.py)\n"
        + scenario.compress_rules(RULES.read_text(), options.speed)
    )
    return path


def _start_exporter(stack: Stack) -> Child:
    # Read back to the moment our journal run began: earlier runs' entries are not this story.
    read_back = math.ceil(time.time() - stack.journal.started_at) + 1
    child = stack.supervisor.start(
        "jada-exporter",
        [
            *(sys.executable, "-m", "exporter"),
            f"--web.listen-address=127.0.0.1:{stack.ports['exporter']}",
            f"--journal.directory={stack.journal.directory}",
            f"--journal.match=SYSLOG_IDENTIFIER={JOURNAL_IDENTIFIER}",
            f"--journal.state-file={stack.workdir / 'exporter-state.json'}",
            f"--journal.read-back={read_back}s",
            "--collector.lightsail",
            f"--lightsail.instance-name={LIGHTSAIL_INSTANCE}",
            f"--lightsail.region={LIGHTSAIL_REGION}",
            f"--lightsail.endpoint-url={stack.lightsail.url}",
        ],
        # Dummy keys for the simulator, so botocore does not look for real ones on this host.
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": "AKIADEMOSIMULATOR",
            "AWS_SECRET_ACCESS_KEY": "demo-simulator-not-a-secret",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
        cwd=stack.workdir,
    )
    wait_for_http(f"{stack.url('exporter')}/metrics", time.monotonic() + START_SECONDS, child)
    return child


@contextmanager
def running_stack(options: StackOptions) -> Iterator[Stack]:
    """Start the whole stack (a taken port raises PortTaken before anything starts); stop it after."""
    ports = allocate_ports(PORT_NAMES, options.port_base)
    workdir = options.workdir
    _reset_workdir(workdir)
    with ExitStack() as stack_exit:
        journal = stack_exit.enter_context(running_journald(workdir / "logs"))
        claude = stack_exit.enter_context(ClaudeSimulator("end_turn", port=ports["claude"], retry_after=0.01))
        google = stack_exit.enter_context(GoogleSimulator(port=ports["google"]))
        lightsail = stack_exit.enter_context(LightsailSimulator(port=ports["lightsail"]))
        lightsail.add_instance(LIGHTSAIL_INSTANCE)
        receiver = stack_exit.enter_context(Receiver(port=ports["receiver"], out=options.out))
        supervisor = stack_exit.enter_context(Supervisor(workdir / "logs"))
        stack = Stack(options, ports, supervisor, journal, claude, google, lightsail, receiver)
        _set_up_google(google, stack.secrets_dir)
        stack.config_path.write_text(
            scenario.render_config(
                stack.state_dir,
                stack.secrets_dir,
                f"127.0.0.1:{ports['orchestrator']}",
                claude.base_url,
                google.url,
                options.sync_interval,
            )
        )
        stack.exporter = _start_exporter(stack)
        stack.monitoring = stack_exit.enter_context(
            running_monitoring(
                supervisor,
                workdir / "monitoring",
                {
                    "jada-agent": [f"127.0.0.1:{ports['orchestrator']}"],
                    "jada-exporter": [f"127.0.0.1:{ports['exporter']}"],
                },
                [_rule_file(options)],
                ALERTMANAGER_CONFIG,
                receiver.url,
                prometheus_config=PROMETHEUS_CONFIG,
                prometheus_port=ports["prometheus"],
                alertmanager_port=ports["alertmanager"],
                start_seconds=START_SECONDS,
            )
        )
        # Prometheus applies its targets some 5 s after start; until its first scrape, a token
        # error would wait for it and the page latency would measure Prometheus starting up.
        stack.wait_for_scrape('up{job="jada-exporter"}', time.monotonic() + START_SECONDS)
        # After Prometheus, so it sees the seed's sessions happen: increase() needs a sample before.
        if options.start_orchestrator:
            stack.start_orchestrator()
        yield stack
