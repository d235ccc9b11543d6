"""`jada-agent run` as a real process: kill -9 and restart, SIGTERM, sd_notify, its endpoints."""

from __future__ import annotations

import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
from helpers_daemon import DaemonProcess, http_get, load, pid_alive, wait_for, write_config

from demo.processes import free_port
from orchestrator.store import Store
from simulators.claude import ClaudeSimulator


def running_session(store: Store, min_turns: int = 1) -> object:
    sessions = store.running_sessions()
    return sessions and sessions[0].turns >= min_turns and sessions[0]


def child_pids(pid: int) -> list[int]:
    """Return the direct children of ``pid``."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def calling(pid: int, port: int) -> bool:
    """Tell whether ``pid`` has a connection open to 127.0.0.1:``port``."""
    try:
        connections = psutil.Process(pid).net_connections()
    except psutil.NoSuchProcess:
        return False
    return any(c.raddr and c.raddr.port == port and c.status == "ESTABLISHED" for c in connections)


def test_kill_9_mid_session_then_restart_loses_nothing_and_keeps_the_budget(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path, daily_sessions=1, listen_address=f"127.0.0.1:{free_port()}")
    cfg = load(cfg_path)
    with Store(cfg.store_path) as store:
        task = store.add_task("Refactor", "[scenario:slow:0.1] refactor the page generator")
        with DaemonProcess(cfg_path, tmp_path / "first.log") as first:
            session = wait_for(lambda: running_session(store, 2), "the session to have done two turns")
            children = wait_for(lambda: child_pids(first.process.pid), "the session child")
            first.signal(signal.SIGKILL)
            first.wait()
            # The orphaned child must die with its daemon, or it would keep working on the task.
            wait_for(lambda: not any(pid_alive(pid) for pid in children), "the orphaned session child to die")
        assert store.get_task(task).state == "running"

        with DaemonProcess(cfg_path, tmp_path / "second.log") as second:
            wait_for(
                lambda: "daily session budget spent (1/1)" in second.log(), "the restarted daemon to idle"
            )
            recorded = store.get_session(session.id)
            assert recorded.exit_reason == "interrupted"
            assert recorded.turns >= 2
            restarted = store.get_task(task)
            assert (restarted.state, restarted.attempts) == ("queued", 1)
            assert store.sessions_used_today() == 1
            assert len(store.sessions_on_day(recorded.day)) == 1
            assert f"task {task} session {session.id} exited: interrupted" in second.log()
            second.signal(signal.SIGTERM)
            assert second.wait() == 0
    db = sqlite3.connect(cfg.store_path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_kill_9_during_a_real_sessions_slow_api_call_then_restart(tmp_path: Path) -> None:
    with ClaudeSimulator("end_turn", slow_seconds=60) as simulator:
        cfg_path = write_config(
            tmp_path,
            daily_sessions=1,
            listen_address=f"127.0.0.1:{free_port()}",
            anthropic_base_url=simulator.base_url,
        )
        cfg = load(cfg_path)
        env = {"ANTHROPIC_API_KEY": "sk-ant-test-kill"}
        with Store(cfg.store_path) as store:
            task = store.add_task("Refactor", "[scenario:slow] refactor the page generator")
            with DaemonProcess(cfg_path, tmp_path / "first.log", env, session_command=None) as first:
                wait_for(store.running_sessions, "the session to start")
                children = wait_for(lambda: child_pids(first.process.pid), "the session child")
                api_port = int(simulator.base_url.rsplit(":", 1)[1])
                wait_for(lambda: calling(children[0], api_port), "the child's Messages API call", timeout=30)
                first.signal(signal.SIGKILL)
                first.wait()
                wait_for(lambda: not any(pid_alive(pid) for pid in children), "the session child to die")
            with DaemonProcess(cfg_path, tmp_path / "second.log", env, session_command=None) as second:
                wait_for(lambda: "daily session budget spent (1/1)" in second.log(), "the restart to idle")
                assert store.get_session(1).exit_reason == "interrupted"
                assert store.get_task(task).state == "queued"
                assert store.sessions_used_today() == 1
                second.signal(signal.SIGTERM)
                assert second.wait() == 0
            assert store.integrity_check() == "ok"


def test_sigterm_lets_the_session_finish_its_turn_then_records_interrupted(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path, shutdown_grace_seconds=30, listen_address=f"127.0.0.1:{free_port()}")
    cfg = load(cfg_path)
    with Store(cfg.store_path) as store:
        task = store.add_task("Slow", "[scenario:slow:0.5]")
        with DaemonProcess(cfg_path, tmp_path / "daemon.log") as daemon:
            session = wait_for(lambda: running_session(store), "the first turn")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait() == 0
        recorded = store.get_session(session.id)
        assert recorded.exit_reason == "interrupted"
        assert recorded.turns > session.turns
        assert store.get_task(task).state == "queued"
        assert store.sessions_used_today() == 1


def test_sigterm_kills_a_silent_session_after_the_grace_period(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path, shutdown_grace_seconds=0.5, listen_address=f"127.0.0.1:{free_port()}")
    cfg = load(cfg_path)
    with Store(cfg.store_path) as store:
        store.add_task("Hang", "[scenario:hang]")
        with DaemonProcess(cfg_path, tmp_path / "daemon.log") as daemon:
            wait_for(store.running_sessions, "the session to start")
            children = wait_for(lambda: child_pids(daemon.process.pid), "the session child")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait() == 0
        assert store.get_session(1).exit_reason == "interrupted"
        assert not any(pid_alive(pid) for pid in children)


def test_systemd_hears_ready_status_and_watchdog(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path, listen_address=f"127.0.0.1:{free_port()}")
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(10)
        env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"}
        with DaemonProcess(cfg_path, tmp_path / "daemon.log", env=env) as daemon:
            messages: list[str] = []

            def heard(text: str) -> bool:
                messages.append(notify.recv(4096).decode())
                return any(text in message for message in messages)

            wait_for(lambda: heard("READY=1"), "READY=1", timeout=15, interval=0)
            ready = next(m for m in messages if "READY=1" in m)
            assert "STATUS=sessions 0/5 today; queue 0 queued, 0 running, 0 needs you;" in ready
            wait_for(lambda: heard("WATCHDOG=1"), "WATCHDOG=1", timeout=15, interval=0)
            daemon.signal(signal.SIGTERM)
            wait_for(lambda: heard("STOPPING=1"), "STOPPING=1", timeout=15, interval=0)
            assert daemon.wait() == 0


def test_daemon_serves_metrics_health_and_status_page(tmp_path: Path) -> None:
    port = free_port()
    cfg_path = write_config(tmp_path, listen_address=f"127.0.0.1:{port}")
    cfg = load(cfg_path)
    with Store(cfg.store_path) as store:
        store.add_task("Small", "[scenario:tool_turns:2]")
    with DaemonProcess(cfg_path, tmp_path / "daemon.log") as daemon:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(f"{base}/healthz") == (200, "ok: idle\n"), "the daemon to go idle")
        status, body = http_get(f"{base}/metrics")
        assert status == 200
        assert 'jada_agent_session_exits_total{reason="completed"} 1.0' in body
        assert 'jada_agent_tasks{state="done"} 1.0' in body
        if shutil.which("promtool"):
            linted = subprocess.run(
                ["promtool", "check", "metrics"], input=body, capture_output=True, text=True
            )
            assert linted.returncode == 0, linted.stdout + linted.stderr
        status, page = http_get(f"{base}/")
        assert status == 200
        assert "Sessions today" in page and "1/5" in page
        assert f"serving {base}/metrics" in daemon.log()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0


def test_daemon_on_a_port_in_use_says_so_and_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg_path = write_config(tmp_path, listen_address=f"127.0.0.1:{port}")
        with DaemonProcess(cfg_path, tmp_path / "daemon.log") as daemon:
            assert daemon.wait() == 2
            assert f"orchestrator.listen_address 127.0.0.1:{port}: cannot listen" in daemon.log()


def test_daemon_process_imports_neither_anthropic_nor_google() -> None:
    probe = (
        "import sys; from orchestrator import cli, daemon; cli.build_parser(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'anthropic', 'google', 'gspread', 'boto3'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
