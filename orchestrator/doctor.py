"""`jada-agent doctor`: the seed's whole health audit as one command.

Gathering (systemd, psutil, the store, the credential files, the journal) happens at the
edges into plain :class:`Facts`; each check is a pure function from those facts to a
:class:`Check` (OK, WARN or FAIL, one line, the fix). Exit 0 when every check is OK, 1 when
one warns, 2 when one fails; ``--json`` prints the same checks for machines.

The daemon's process is the unit's MainPID where systemd runs. Elsewhere (a container, a
test machine) it is found by scanning processes for a ``jada-agent run`` whose config file
is this one: the daemon writes no pid file, and a scan cannot go stale the way one can.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator import config as config_module
from orchestrator import status
from orchestrator.log import IDENTIFIER
from orchestrator.status import (
    FAIL,
    OK,
    SEVERITY,
    WARN,
    CredentialLine,
    JobLine,
    StatusReport,
    describe_run,
    format_age,
    gather_config,
    hhmm,
)
from orchestrator.store import Store, StoreError

UNIT = "jada-agent.service"
SYSTEMD_RUNTIME = Path("/run/systemd/system")
JOURNAL_DIRECTORIES = (Path("/run/log/journal"), Path("/var/log/journal"))
JOURNAL_LINES = 5
# Error lines younger than this make the journal check warn.
JOURNAL_RECENT_SECONDS = 24 * 3600
# The same thresholds as alerts/config.yaml, so doctor and the pager agree.
JOB_STALE_INTERVALS = 2
JOB_STALE_GRACE_SECONDS = 300
TURN_LIMIT_EXIT_SHARE = 0.5
TURN_LIMIT_MIN_EXITS = 2
NEEDS_YOU_WAIT_SECONDS = 4 * 3600
MEMORY_AVAILABLE_RATIO = 0.1
DISK_AVAILABLE_RATIO = 0.15
DISK_AVAILABLE_FAIL_RATIO = 0.05
# The daemon imports no API library (DESIGN.md: a lean daemon); far above this, one crept in.
DAEMON_RSS_WARN_BYTES = 200 * 1024 * 1024
EXIT_CODES = {OK: 0, WARN: 1, FAIL: 2}
MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class Check:
    """One line of the audit: its status, what was found, and the command that fixes it."""

    name: str
    status: str
    message: str
    fix: str | None = None
    details: tuple[str, ...] = ()

    def line(self) -> str:
        """Render ``FAIL credential google: ...``."""
        return f"{self.status:<4} {self.name}: {self.message}"


@dataclass(frozen=True)
class UnitState:
    """What ``systemctl show`` says about the unit."""

    active_state: str
    sub_state: str
    main_pid: int
    restarts: int


@dataclass(frozen=True)
class ProcessInfo:
    """The daemon process: when it started, CPU used, resident memory, and how it was found."""

    pid: int
    started_at: float
    cpu_seconds: float
    rss_bytes: int
    threads: int
    found_by: str


@dataclass(frozen=True)
class HostInfo:
    """The host's CPU, memory and the disk holding the state directory."""

    cpu_percent: float
    cpus: int
    load1: float
    memory_total: int
    memory_available: int
    disk_path: str
    disk_total: int
    disk_free: int


@dataclass(frozen=True)
class JournalLine:
    """One error line from the journal."""

    at: float
    message: str


@dataclass(frozen=True)
class JournalState:
    """The latest error lines, or why the journal could not be read."""

    source: str
    lines: tuple[JournalLine, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Facts:
    """Everything the checks look at, gathered once."""

    now: float
    config_path: str
    systemd: bool
    unit: UnitState | None
    unit_error: str | None
    process: ProcessInfo | None
    host: HostInfo
    report: StatusReport | None
    store_error: str | None
    running_sessions: int
    runnable_task: bool
    credentials: tuple[CredentialLine, ...]
    journal: JournalState


# Pure parts: parsing and the checks


def parse_systemctl_show(text: str) -> UnitState:
    """Parse ``systemctl show -p ActiveState,SubState,MainPID,NRestarts`` output."""
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def number(key: str) -> int:
        value = values.get(key, "")
        return int(value) if value.isdigit() else 0

    return UnitState(
        active_state=values.get("ActiveState", "unknown") or "unknown",
        sub_state=values.get("SubState", "unknown") or "unknown",
        main_pid=number("MainPID"),
        restarts=number("NRestarts"),
    )


def daemon_config(cmdline: Sequence[str], environ: Mapping[str, str], cwd: str = "/") -> str | None:
    """Return the config file of a ``jada-agent run`` command line, or None if it is not one."""
    rest: Sequence[str] | None = None
    for index, token in enumerate(cmdline):
        if token == "-m" and index + 1 < len(cmdline) and cmdline[index + 1] == "orchestrator":
            rest = cmdline[index + 2 :]
            break
        if index < 2 and Path(token).name == "jada-agent":
            rest = cmdline[index + 1 :]
            break
    if rest is None:
        return None
    config_path: str | None = None
    command = None
    index = 0
    while index < len(rest):
        token = rest[index]
        if token == "--config" and index + 1 < len(rest):
            config_path = rest[index + 1]
            index += 2
            continue
        if token.startswith("--config="):
            config_path = token.split("=", 1)[1]
        elif not token.startswith("-"):
            command = token
            break
        index += 1
    if command != "run":
        return None
    path = config_path or environ.get("JADA_AGENT_CONFIG") or str(config_module.DEFAULT_PATH)
    return os.path.normpath(os.path.join(cwd, path))


def check_service(facts: Facts) -> Check:
    """Say whether the service runs, and since when."""
    process = facts.process
    up = f", up {format_age(facts.now - process.started_at)}" if process is not None else ""
    if facts.systemd:
        if facts.unit_error is not None or facts.unit is None:
            return Check("service", WARN, f"cannot read {UNIT} from systemd: {facts.unit_error}")
        unit = facts.unit
        state = f"{UNIT} {unit.active_state} ({unit.sub_state}){up}, {unit.restarts} restarts"
        if unit.active_state == "active":
            return Check("service", OK, state)
        if unit.active_state in ("activating", "reloading", "deactivating"):
            return Check("service", WARN, state)
        return Check("service", FAIL, f"{state}; see journalctl -u {UNIT}", fix=f"systemctl start {UNIT}")
    unknown = "unit state unknown: systemd is not running on this host"
    if process is None:
        return Check(
            "service",
            FAIL,
            f"{unknown}, and no `jada-agent run` process uses {facts.config_path}",
            fix=f"jada-agent --config {facts.config_path} run",
        )
    return Check("service", OK, f"{unknown}; `jada-agent run` is pid {process.pid} ({process.found_by}){up}")


def check_daemon(facts: Facts) -> Check:
    """Say what the daemon process costs: CPU since it started, resident memory."""
    process = facts.process
    if process is None:
        return Check("daemon", WARN, "no daemon process to measure")
    lifetime = max(facts.now - process.started_at, 1.0)
    cpu = 100.0 * process.cpu_seconds / lifetime
    text = (
        f"pid {process.pid}: CPU {cpu:.2f}% average since start, memory {process.rss_bytes / MB:.0f} MB"
        f" resident, {process.threads} threads"
    )
    if process.rss_bytes > DAEMON_RSS_WARN_BYTES:
        return Check(
            "daemon",
            WARN,
            f"{text}; more than {DAEMON_RSS_WARN_BYTES // MB} MB: the daemon should stay lean",
            fix=f"systemctl restart {UNIT}",
        )
    return Check("daemon", OK, text)


def check_host(host: HostInfo) -> Check:
    """Say how busy the host is and how much memory and disk are left.

    CPU is reported, not judged: a busy moment is no fault (no alert pages on host CPU either),
    while running out of memory or disk is.
    """
    memory_ratio = host.memory_available / host.memory_total if host.memory_total else 0.0
    disk_ratio = host.disk_free / host.disk_total if host.disk_total else 0.0
    text = (
        f"CPU {host.cpu_percent:.0f}% of {host.cpus} cores (load {host.load1:.2f}), memory "
        f"{(host.memory_total - host.memory_available) / MB:.0f} MB used of {host.memory_total / MB:.0f} MB"
        f" ({memory_ratio:.0%} available), disk {(host.disk_total - host.disk_free) / GB:.1f} GB used of "
        f"{host.disk_total / GB:.1f} GB ({disk_ratio:.0%} free) at {host.disk_path}"
    )
    problems = []
    status = OK
    if memory_ratio < MEMORY_AVAILABLE_RATIO:
        problems.append(f"less than {MEMORY_AVAILABLE_RATIO:.0%} of memory available")
        status = FAIL
    if disk_ratio < DISK_AVAILABLE_FAIL_RATIO:
        problems.append(f"less than {DISK_AVAILABLE_FAIL_RATIO:.0%} of the disk free")
        status = FAIL
    elif disk_ratio < DISK_AVAILABLE_RATIO:
        problems.append(f"less than {DISK_AVAILABLE_RATIO:.0%} of the disk free")
        status = _worst(status, WARN)
    return Check("host", status, "; ".join([text, *problems]))


def check_sessions(report: StatusReport) -> Check:
    """Say how many sessions today used and how they ended; warn when many hit the turn limit."""
    ended = [s.exit_reason for s in report.sessions if s.exit_reason is not None]
    counts = {reason: ended.count(reason) for reason in dict.fromkeys(ended)}
    endings = ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "none ended yet"
    text = f"{report.sessions_used} of {report.daily_limit} used today ({report.day} UTC): {endings}"
    at_limit = counts.get("max_turns", 0)
    failed = sum(counts.get(reason, 0) for reason in ("error", "timeout"))
    problems = []
    if len(ended) >= TURN_LIMIT_MIN_EXITS and at_limit / len(ended) >= TURN_LIMIT_EXIT_SHARE:
        problems.append(
            f"{at_limit} of {len(ended)} ended at the {report.turn_limit}-turn limit: "
            "split those tasks or narrow their prompts"
        )
    if failed:
        problems.append(f"{failed} ended with error or timeout: see `jada-agent task show` for their tasks")
    return Check("sessions", WARN if problems else OK, "; ".join([text, *problems]))


def check_queue(report: StatusReport, running_sessions: int, runnable_task: bool) -> Check:
    """Say what the queue holds and whether the daemon is busy, waiting or idle."""
    q = report.queue
    text = (
        f"{q.get('queued', 0)} queued, {q.get('running', 0)} running, {q.get('needs_you', 0)} needs you,"
        f" {q.get('done', 0)} done, {q.get('failed', 0)} failed"
    )
    if running_sessions:
        state = f"busy: {running_sessions} session running"
    elif runnable_task and report.sessions_used >= report.daily_limit:
        state = "daily budget spent, waiting for 00:00 UTC"
    elif runnable_task:
        state = "a runnable task waits for the next poll"
    else:
        state = "idle: no runnable task"
    text = f"{text}; {state}"
    if report.needs_you:
        oldest = report.needs_you[0]
        text += f"; oldest question waiting {format_age(oldest.waiting_seconds)} (task {oldest.id})"
        if oldest.waiting_seconds > NEEDS_YOU_WAIT_SECONDS:
            return Check(
                "queue",
                WARN,
                f"{text}, longer than {format_age(NEEDS_YOU_WAIT_SECONDS)}: {oldest.question}",
                fix=f"jada-agent task answer {oldest.id} 'ANSWER'",
            )
    return Check("queue", OK, text)


def check_job(job: JobLine, now: float) -> Check:
    """Say when a job last succeeded: FAIL when stale, WARN when its last run failed."""
    name = f"job {job.name}"
    limit = JOB_STALE_INTERVALS * job.interval_seconds + JOB_STALE_GRACE_SECONDS
    last = job.runs[0] if job.runs else None
    last_text = f"; last run {describe_run(last)}" if last is not None else ""
    if job.last_success is None:
        if last is None:
            return Check(name, WARN, f"has not run yet (every {format_age(job.interval_seconds)})")
        return Check(name, FAIL, f"never succeeded{last_text}")
    age = now - job.last_success
    success = f"last success {hhmm(job.last_success)} UTC, {format_age(age)} ago"
    if age > limit:
        return Check(
            name,
            FAIL,
            f"{success}, more than {JOB_STALE_INTERVALS} intervals of {format_age(job.interval_seconds)}"
            f" plus {format_age(JOB_STALE_GRACE_SECONDS)}{last_text}",
        )
    if last is not None and last.result not in ("success", "skipped"):
        return Check(name, WARN, f"{success}{last_text}")
    return Check(name, OK, f"{success} (every {format_age(job.interval_seconds)})")


def check_credential(line: CredentialLine) -> Check:
    """Turn a credential's health into a check, carrying its first fix."""
    fix = next((p.fix for p in line.problems if p.fix), None)
    return Check(f"credential {line.name}", line.status, line.summary, fix=fix)


def check_journal(journal: JournalState, now: float) -> Check:
    """Say whether jada-agent logged errors lately, listing the latest."""
    if journal.error is not None:
        return Check("journal", WARN, f"cannot read {journal.source}: {journal.error}; error lines unknown")
    if not journal.lines:
        return Check("journal", OK, f"no error lines from {IDENTIFIER} in {journal.source}")
    details = tuple(f"{_clock(line.at)} {line.message}" for line in journal.lines)
    newest = journal.lines[0]
    age = format_age(max(now - newest.at, 0.0))
    text = f"newest error line {age} ago ({len(journal.lines)} shown below): {newest.message}"
    recent = now - newest.at <= JOURNAL_RECENT_SECONDS
    return Check("journal", WARN if recent else OK, text, details=details)


def run_checks(facts: Facts) -> list[Check]:
    """Run every check on the gathered facts, in the audit's order."""
    checks = [check_service(facts), check_daemon(facts), check_host(facts.host)]
    if facts.report is None:
        checks.append(Check("store", FAIL, facts.store_error or "store unreadable"))
    else:
        checks.append(check_sessions(facts.report))
        checks.append(check_queue(facts.report, facts.running_sessions, facts.runnable_task))
        checks.extend(check_job(job, facts.now) for job in facts.report.jobs)
    checks.extend(check_credential(line) for line in facts.credentials)
    checks.append(check_journal(facts.journal, facts.now))
    return checks


def overall(checks: Sequence[Check]) -> str:
    """Return the worst status among the checks."""
    return max((c.status for c in checks), key=SEVERITY.__getitem__, default=OK)


def render_text(checks: Sequence[Check]) -> str:
    """Render one line per check, with the fix and any detail lines indented below it."""
    lines = []
    for check in checks:
        lines.append(check.line())
        if check.fix and check.fix not in check.message:
            lines.append(f"     fix: {check.fix}")
        lines.extend(f"     {detail}" for detail in check.details)
    return "\n".join(lines) + "\n"


def render_json(checks: Sequence[Check]) -> str:
    """Render the checks as one JSON document."""
    status = overall(checks)
    return json.dumps(
        {"status": status, "exit_code": EXIT_CODES[status], "checks": [asdict(c) for c in checks]},
        indent=2,
    )


def _worst(a: str, b: str) -> str:
    return a if SEVERITY[a] >= SEVERITY[b] else b


def _clock(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


# Gathering: the I/O at the edges


def gather(cfg: config_module.Config, journal_directory: Path | None, now: float | None = None) -> Facts:
    """Gather the facts the checks need from systemd, psutil, the store, files and the journal."""
    now = time.time() if now is None else now
    systemd = SYSTEMD_RUNTIME.is_dir()
    unit, unit_error = read_unit() if systemd else (None, None)
    process = None
    if unit is not None and unit.main_pid > 0:
        process = read_process(unit.main_pid, "the unit's MainPID")
    if process is None:
        process = find_daemon(cfg.path)
    report = None
    store_error = None
    running = 0
    runnable = False
    credential_lines: tuple[CredentialLine, ...] = ()
    if not cfg.store_path.exists():
        store_error = f"no store at {cfg.store_path}: the daemon has not run with {cfg.path}"
    else:
        try:
            with Store(cfg.store_path) as store:
                report = gather_config(cfg, store, now)
                running = len(store.running_sessions())
                runnable = store.next_runnable_task() is not None
                credential_lines = report.credentials
        except StoreError as exc:
            store_error = str(exc)
    if report is None:
        # No store, no refresh verdicts: the credential files can still be checked.
        credential_lines = status.credential_lines(cfg, ())
    return Facts(
        now=now,
        config_path=str(cfg.path),
        systemd=systemd,
        unit=unit,
        unit_error=unit_error,
        process=process,
        host=read_host(cfg.state_dir),
        report=report,
        store_error=store_error,
        running_sessions=running,
        runnable_task=runnable,
        credentials=credential_lines,
        journal=read_journal(journal_directory),
    )


def read_unit() -> tuple[UnitState | None, str | None]:
    """Ask systemd for the unit's state; (None, why) when it cannot say."""
    try:
        result = subprocess.run(
            ["systemctl", "show", UNIT, "--property=ActiveState,SubState,MainPID,NRestarts"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    if result.returncode != 0:
        return None, result.stderr.strip() or f"systemctl exited with {result.returncode}"
    return parse_systemctl_show(result.stdout), None


def read_process(pid: int, found_by: str) -> ProcessInfo | None:
    """Measure a process with psutil; None when it is gone or hidden."""
    import psutil

    try:
        process = psutil.Process(pid)
        with process.oneshot():
            times = process.cpu_times()
            return ProcessInfo(
                pid=pid,
                started_at=process.create_time(),
                cpu_seconds=times.user + times.system,
                rss_bytes=process.memory_info().rss,
                threads=process.num_threads(),
                found_by=found_by,
            )
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def find_daemon(config_path: Path) -> ProcessInfo | None:
    """Find the oldest `jada-agent run` process whose config file is ``config_path``."""
    import psutil

    wanted = os.path.normpath(os.path.abspath(config_path))
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "create_time"]):
        cmdline = process.info["cmdline"] or []
        if not any("orchestrator" in part or "jada-agent" in part for part in cmdline[:3]):
            continue
        try:
            environ = process.environ() if "--config" not in " ".join(cmdline) else {}
            cwd = process.cwd()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if daemon_config(cmdline, environ, cwd) == wanted:
            found.append((process.info["create_time"], process.info["pid"]))
    for _, pid in sorted(found):
        info = read_process(pid, "process scan")
        if info is not None:
            return info
    return None


def read_host(state_dir: Path) -> HostInfo:
    """Measure the host's CPU, memory and the disk holding ``state_dir``."""
    import psutil

    disk_path = state_dir
    while not disk_path.exists() and disk_path != disk_path.parent:
        disk_path = disk_path.parent
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(disk_path))
    return HostInfo(
        cpu_percent=psutil.cpu_percent(interval=0.2),
        cpus=psutil.cpu_count() or 1,
        load1=os.getloadavg()[0],
        memory_total=memory.total,
        memory_available=memory.available,
        disk_path=str(disk_path),
        disk_total=disk.total,
        disk_free=disk.free,
    )


def read_journal(directory: Path | None, limit: int = JOURNAL_LINES) -> JournalState:
    """Read the latest error lines (priority 3 or more urgent) that jada-agent logged."""
    directories = JOURNAL_DIRECTORIES if directory is None else (directory,)
    source = "the system journal" if directory is None else f"the journal in {directory}"
    if not any(path.is_dir() and any(path.rglob("*.journal")) for path in directories):
        where = " or ".join(str(path) for path in directories)
        return JournalState(source, error=f"no journal files in {where}; is systemd-journald running?")
    try:
        from systemd import journal

        reader = journal.Reader(path=str(directory)) if directory is not None else journal.Reader()
    except (OSError, ImportError) as exc:
        return JournalState(source, error=str(exc))
    with reader:
        reader.add_match(SYSLOG_IDENTIFIER=IDENTIFIER)
        reader.add_match(*(f"PRIORITY={level}" for level in range(4)))
        reader.seek_tail()
        lines = []
        while len(lines) < limit:
            entry = reader.get_previous()
            if not entry:
                break
            message = entry.get("MESSAGE", "")
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            when = entry.get("__REALTIME_TIMESTAMP")
            at = when.timestamp() if hasattr(when, "timestamp") else 0.0
            lines.append(JournalLine(at, " ".join(str(message).split())[:300]))
    return JournalState(source, tuple(lines))


# The command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `jada-agent doctor`."""
    parser = subparsers.add_parser(
        "doctor", help="audit the service, host, sessions, queue, jobs, credentials and journal"
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--journal-directory",
        type=Path,
        metavar="DIR",
        help="read journal files from DIR instead of the system journal",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the audit, print it, and return 0 (all OK), 1 (a warning) or 2 (a failure)."""
    from orchestrator.cli import load_config

    cfg = load_config(args)
    checks = run_checks(gather(cfg, args.journal_directory))
    if args.json:
        print(render_json(checks))
    else:
        sys.stdout.write(render_text(checks))
    return EXIT_CODES[overall(checks)]
