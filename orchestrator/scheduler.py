"""Scheduled jobs: start each as a child process on its interval, reap it, count the result.

The daemon calls ``tick(now)`` on every poll and ``shutdown()`` when it stops. A job child
(``python -m orchestrator --config CFG job exec NAME``) prints one JSON line and exits 0 or 1
(docs/CONTRACTS.md). A run still going when the next is due is not started twice: the slot
is counted as skipped. A run past its timeout is killed and counted as a timeout. After a
restart the cadence continues from the last recorded run: one run if overdue, never a burst.

Also the ``jada-agent job list|run|exec`` commands.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from orchestrator import config as config_module
from orchestrator import credentials, log
from orchestrator.jobmetrics import JobMetrics, registry_of
from orchestrator.jobs import FAILURE, JOB_MODULES, SKIPPED, SUCCESS, TIMEOUT, JobResult, parse_result
from orchestrator.store import Store

# Components named in log lines, keeping the seed's "[port-sheet]" prefix.
COMPONENTS = {"port_sheet_sync": "port-sheet"}
DEFAULT_CREDENTIAL = "google"
# The child stops its own work this long before its timeout, to still report what happened.
REPORT_MARGIN_SECONDS = 5.0
SHUTDOWN_GRACE_SECONDS = 5.0


@dataclass
class _Run:
    name: str
    started_at: float
    started_monotonic: float
    process: subprocess.Popen[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]


@dataclass(frozen=True)
class RunOutcome:
    """A finished (or skipped) run, as the scheduler recorded it."""

    job_name: str
    started_at: float
    result: str
    duration_seconds: float
    job_result: JobResult = field(default_factory=lambda: JobResult(SKIPPED, ""))


def job_credentials(cfg: config_module.Config) -> dict[str, str]:
    """Map each enabled job to the name of the credential it uses."""
    return {
        name: str(job.options.get("credential", DEFAULT_CREDENTIAL))
        for name, job in cfg.jobs.items()
        if job.enabled and name in JOB_MODULES
    }


class Scheduler:
    """Run the configured jobs as child processes on their intervals."""

    def __init__(
        self,
        config: config_module.Config,
        store: Store,
        metrics: Any,
        command: list[str] | None = None,
        now: float | datetime | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.jobs = {name: job for name, job in config.jobs.items() if job.enabled and name in JOB_MODULES}
        for name in sorted(set(config.jobs) - set(JOB_MODULES)):
            if config.jobs[name].enabled:
                log.event(
                    f"[job] {config.path}: jobs.{name} is not a job jada-agent knows; it will not run"
                    f" (known: {', '.join(sorted(JOB_MODULES))})",
                    logging.ERROR,
                    event="job_unknown",
                    job_name=name,
                )
        self._command = command or [sys.executable, "-m", "orchestrator", "--config", str(config.path)]
        self._running: dict[str, _Run] = {}
        self._next_due: dict[str, float] = {}
        uses = job_credentials(config)
        self.metrics = JobMetrics(
            registry_of(metrics),
            {name: job.interval_seconds for name, job in self.jobs.items()},
            sorted(set(uses.values())),
            store.last_job_success,
        )
        for name in sorted(set(uses.values())):
            self.check_credential(name)
        start = _epoch(now)
        for name, job in self.jobs.items():
            self._next_due[name] = self._first_due(name, job.interval_seconds, start)

    def check_credential(self, name: str) -> bool:
        """Check a credential file (no refresh); log and export what is wrong with it."""
        path = credentials.credential_path(self.config.secrets_dir, name)
        try:
            credential = credentials.load(path, name, credentials.expected_owner(self.config.service_user))
        except credentials.CredentialError as exc:
            log.event(
                f"[credentials] {exc}",
                logging.ERROR,
                event="credential_error",
                credential=name,
            )
            self.metrics.credential_checked(name, False, None)
            return False
        for warning in credential.warnings:
            log.event(
                f"[credentials] {warning}", logging.WARNING, event="credential_insecure", credential=name
            )
        self.metrics.credential_checked(name, None, credential.insecure)
        return True

    def _first_due(self, name: str, interval: float, now: float) -> float:
        last = self.store.last_job_runs(name, 1)
        if not last:
            return now
        due = last[0].started_at + interval
        if due > now:
            return due
        # Overdue after a restart: the latest missed slot, so one run now (not one per missed
        # slot) and then the old 30-minute grid again.
        return last[0].started_at + math.floor((now - last[0].started_at) / interval) * interval

    @property
    def running(self) -> list[str]:
        """Names of the jobs whose child is running."""
        return sorted(self._running)

    def next_due(self, name: str) -> float:
        """When the job is next due (unix time)."""
        return self._next_due[name]

    def tick(self, now: float | datetime | None = None) -> list[RunOutcome]:
        """Reap finished runs, kill timed-out ones, start or skip due ones; return what ended."""
        at = _epoch(now)
        outcomes = self._reap(at)
        for name, job in self.jobs.items():
            due = self._next_due[name]
            if at < due:
                continue
            if name in self._running:
                outcomes.append(self._skip(name, due))
            else:
                self._start(name, at)
            while due <= at:
                due += job.interval_seconds
            self._next_due[name] = due
        return outcomes

    def run_once(self, name: str) -> RunOutcome:
        """Run one job now, wait for it (killing it at its timeout) and record the result."""
        job = self.config.jobs[name]
        run = self._start(name, time.time())
        try:
            run.process.wait(timeout=job.timeout_seconds)
        except subprocess.TimeoutExpired:
            return self._kill(run, time.time())
        outcome = self._reap(time.time())
        return next(o for o in outcome if o.job_name == name)

    def wait(self, timeout: float) -> None:
        """Block until every running child has exited or ``timeout`` seconds passed for each."""
        for run in list(self._running.values()):
            try:
                run.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue

    def shutdown(self) -> None:
        """Stop running children: SIGTERM, then SIGKILL after a short grace; record them."""
        for run in list(self._running.values()):
            _signal_group(run.process, signal.SIGTERM)
        for run in list(self._running.values()):
            try:
                run.process.wait(timeout=SHUTDOWN_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(run.process, signal.SIGKILL)
                run.process.wait()
            self._finish(
                run,
                time.time(),
                JobResult(FAILURE, "stopped by daemon shutdown before it finished"),
            )

    def _start(self, name: str, at: float) -> _Run:
        # Files, not pipes: the daemon reads them only after exit, so a chatty child never blocks.
        stdout = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _finish
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _finish
        process = subprocess.Popen(
            [*self._command, "job", "exec", name],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            # Its own process group, so a timeout kill also takes anything it spawned.
            start_new_session=True,
        )
        run = _Run(name, at, time.monotonic(), process, stdout, stderr)
        self._running[name] = run
        return run

    def _reap(self, at: float) -> list[RunOutcome]:
        outcomes = []
        for name, run in list(self._running.items()):
            code = run.process.poll()
            if code is not None:
                run.stdout.seek(0)
                output = run.stdout.read().decode("utf-8", "replace")
                result = parse_result(output, code, _last_line(run.stderr))
                outcomes.append(self._finish(run, at, result))
            elif at - run.started_at > self.config.jobs[name].timeout_seconds:
                outcomes.append(self._kill(run, at))
        return outcomes

    def _kill(self, run: _Run, at: float) -> RunOutcome:
        _signal_group(run.process, signal.SIGKILL)
        run.process.wait()
        timeout = self.config.jobs[run.name].timeout_seconds
        return self._finish(run, at, JobResult(TIMEOUT, f"timed out after {timeout:g}s and was killed"))

    def _finish(self, run: _Run, at: float, result: JobResult) -> RunOutcome:
        self._running.pop(run.name, None)
        run.stdout.close()
        run.stderr.close()
        duration = max(time.monotonic() - run.started_monotonic, 0.0)
        self.store.record_job_run(
            run.name,
            run.started_at,
            max(at, run.started_at),
            result.result,
            duration,
            result.detail,
            result.to_json(),
        )
        self.metrics.run_finished(run.name, result.result, duration)
        self.metrics.job_result(result)
        _log_run(run.name, run.started_at, result, duration)
        return RunOutcome(run.name, run.started_at, result.result, duration, result)

    def _skip(self, name: str, due: float) -> RunOutcome:
        detail = "previous run still going when this one was due"
        self.store.record_job_run(name, due, due, SKIPPED, 0.0, detail)
        self.metrics.run_finished(name, SKIPPED, None)
        log.event(
            f"[job] {name} skipped at {iso(due)}: {detail}",
            logging.WARNING,
            event="job_run",
            job_name=name,
            result=SKIPPED,
            duration_seconds=0,
        )
        return RunOutcome(name, due, SKIPPED, 0.0, JobResult(SKIPPED, detail))


def iso(when: float) -> str:
    """Format a unix time as the seed's UTC timestamp: 2026-05-13T14:30:00Z."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log_run(name: str, started_at: float, result: JobResult, duration: float) -> None:
    component = COMPONENTS.get(name, name)
    for warning in result.warnings:
        log.event(
            f"[{component}] {warning}", logging.WARNING, event="credential_insecure", component=component
        )
    error = result.token_error
    if error is not None:
        log.event(
            error.message(component),
            logging.ERROR,
            event="token_error",
            component=component,
            credential=error.credential,
            status_code=error.status_code,
            oauth_error=error.oauth_error,
            retryable=str(error.retryable).lower(),
        )
    if result.result == SUCCESS:
        log.event(
            f"[{component}] sync ok at {iso(started_at)}: {result.detail}",
            event="sync_ok",
            component=component,
            job_name=name,
        )
    else:
        log.event(
            f"[{component}] sync failed at {iso(started_at)}: {result.detail}",
            logging.ERROR,
            event="sync_failed",
            component=component,
            job_name=name,
        )
    log.event(
        f"[job] {name} finished: {result.result} in {duration:.1f}s",
        logging.INFO if result.result == SUCCESS else logging.WARNING,
        event="job_run",
        job_name=name,
        result=result.result,
        duration_seconds=f"{duration:.3f}",
    )


def _last_line(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    lines = [line for line in stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return


def _epoch(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    return now.timestamp() if isinstance(now, datetime) else float(now)


# Commands


def add_parser(subparsers: Any) -> None:
    """Register ``jada-agent job list|run|exec``."""
    parser = subparsers.add_parser("job", help="scheduled jobs: list them, run one now")
    commands = parser.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    listing = commands.add_parser("list", help="list jobs with their schedule and last runs")
    listing.set_defaults(func=_list)
    run = commands.add_parser("run", help="run a job once now, print the result (exit 1 on failure)")
    run.add_argument("name")
    run.set_defaults(func=_run)
    execute = commands.add_parser("exec", help="(internal) the job child process: print one JSON line")
    execute.add_argument("name")
    execute.set_defaults(func=_exec)


def _job(cfg: config_module.Config, name: str) -> config_module.JobConfig:
    if name not in cfg.jobs or name not in JOB_MODULES:
        known = ", ".join(sorted(n for n in cfg.jobs if n in JOB_MODULES)) or "none"
        print(
            f"jada-agent: config error: {cfg.path}: no job named {name!r}; known jobs: {known}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return cfg.jobs[name]


def _list(args: argparse.Namespace) -> int:
    from orchestrator.cli import load_config

    cfg = load_config(args)
    with Store(cfg.store_path) as store:
        print(f"{'job':<20} {'enabled':<8} {'every':>8} {'timeout':>8}  last run")
        for name, job in sorted(cfg.jobs.items()):
            runs = store.last_job_runs(name, 1)
            last = f"{iso(runs[0].started_at)} {runs[0].result}" if runs else "never"
            success = store.last_job_success(name)
            last += f", last success {iso(success)}" if success is not None else ", never succeeded"
            print(
                f"{name:<20} {'yes' if job.enabled else 'no':<8} {job.interval_seconds:>7g}s"
                f" {job.timeout_seconds:>7g}s  {last}"
            )
    return 0


def _run(args: argparse.Namespace) -> int:
    from orchestrator.cli import load_config

    cfg = load_config(args)
    _job(cfg, args.name)
    log.setup()
    with Store(cfg.store_path) as store:
        from prometheus_client import CollectorRegistry

        scheduler = Scheduler(cfg, store, CollectorRegistry())
        outcome = scheduler.run_once(args.name)
    print(f"{args.name}: {outcome.result} in {outcome.duration_seconds:.1f}s: {outcome.job_result.detail}")
    error = outcome.job_result.token_error
    if error is not None:
        print(f"token error: {error.reason()} (retryable: {str(error.retryable).lower()})")
    return 0 if outcome.result == SUCCESS else 1


def _exec(args: argparse.Namespace) -> int:
    from orchestrator.cli import load_config

    cfg = load_config(args)
    job = _job(cfg, args.name)
    deadline = time.monotonic() + max(job.timeout_seconds - REPORT_MARGIN_SECONDS, job.timeout_seconds * 0.8)
    module = importlib.import_module(JOB_MODULES[args.name])
    try:
        result = module.run(cfg, job, deadline)
    except Exception as exc:
        # The contract is one JSON line whatever happens; the type says more than a traceback here.
        result = JobResult(FAILURE, f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    print(result.to_json(), flush=True)
    return 0 if result.result == SUCCESS else 1
