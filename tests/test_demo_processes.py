"""The demo's process supervisor: real child processes, real ports, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from demo import processes
from demo.processes import ChildFailed, PortTaken, StackError, Supervisor

PYTHON = sys.executable


def http_server(port: int) -> list[str]:
    return [PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening(port: int) -> bool:
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in psutil.net_connections(kind="tcp")
    )


def wait_until(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_stop_all_leaves_no_listening_socket_and_no_process(tmp_path: Path) -> None:
    ports = [processes.free_port(), processes.free_port()]
    with Supervisor(tmp_path) as supervisor:
        children = [supervisor.start(f"server{i}", http_server(port)) for i, port in enumerate(ports)]
        for child, port in zip(children, ports, strict=True):
            processes.wait_for_http(f"http://127.0.0.1:{port}/", time.monotonic() + 15, child)
        assert all(listening(port) for port in ports)
    assert not any(alive(child.pid) for child in children)
    assert not any(listening(port) for port in ports)
    for port in ports:
        processes.check_port_free(port)


def test_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    supervisor = Supervisor(tmp_path, grace_seconds=0.5)
    child = supervisor.start("stubborn", [PYTHON, "-c", script])
    assert wait_until(lambda: "ready" in child.log_path.read_text())
    supervisor.stop_all()
    assert child.popen.returncode == -signal.SIGKILL
    assert not alive(child.pid)


def test_grandchildren_in_the_group_are_stopped_with_the_child(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(grandchild.pid, flush=True)
        time.sleep(60)
        """
    )
    supervisor = Supervisor(tmp_path)
    child = supervisor.start("parent", [PYTHON, "-c", script])
    assert wait_until(lambda: child.log_path.read_text().strip().isdigit())
    grandchild = int(child.log_path.read_text())
    assert alive(grandchild)
    supervisor.stop_all()
    assert not alive(child.pid)
    assert not alive(grandchild)


def test_taken_port_names_the_process_holding_it() -> None:
    with processes.socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortTaken) as raised:
            processes.check_port_free(port)
    me = psutil.Process(os.getpid()).name()
    expected = f"port {port} is taken by {me} (pid {os.getpid()}); stop it or pass --port-base"
    assert str(raised.value) == expected


def test_ports_from_a_base_are_consecutive_and_checked() -> None:
    with processes.socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(PortTaken, match=rf"^port {taken} is taken by .*; stop it or pass --port-base$"):
            processes.allocate_ports(["orchestrator", "exporter"], base=taken - 1)
    base = processes.free_port()
    assert processes.allocate_ports(["orchestrator", "exporter"], base=base) == {
        "orchestrator": base,
        "exporter": base + 1,
    }


def test_ports_without_a_base_are_distinct_and_free() -> None:
    ports = processes.allocate_ports([f"service{i}" for i in range(8)])
    assert len(set(ports.values())) == 8
    for port in ports.values():
        processes.check_port_free(port)


def test_child_that_exits_early_fails_with_its_log_tail(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    child = supervisor.start("broken", [PYTHON, "-c", "print('cannot open config.yml'); raise SystemExit(3)"])
    with pytest.raises(ChildFailed, match=r"(?s)broken exited with code 3 .*cannot open config.yml"):
        processes.wait_for_http("http://127.0.0.1:1/", time.monotonic() + 15, child)
    supervisor.stop_all()


def test_missing_program_fails_with_its_name_not_a_traceback(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    with pytest.raises(StackError, match=r"^cannot start prometheus: /nonexistent/prometheus: No such file"):
        supervisor.start("prometheus", ["/nonexistent/prometheus"])
    assert supervisor.children == []


def test_sigterm_to_the_demo_process_stops_every_child(tmp_path: Path) -> None:
    port = processes.free_port()
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from demo.processes import Supervisor, signals_unwind, wait_for_http
        with signals_unwind(), Supervisor(Path({str(tmp_path)!r})) as supervisor:
            child = supervisor.start("server", {http_server(port)!r})
            wait_for_http("http://127.0.0.1:{port}/", time.monotonic() + 15, child)
            print(child.pid, flush=True)
            time.sleep(60)
        """
    )
    demo = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(demo.stdout.readline())
        assert listening(port)
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=15) == 128 + signal.SIGTERM
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert not alive(server_pid)
    assert not listening(port)


def test_children_die_with_a_demo_process_that_was_killed_outright(tmp_path: Path) -> None:
    port = processes.free_port()
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from demo.processes import Supervisor, wait_for_http
        supervisor = Supervisor(Path({str(tmp_path)!r}))
        child = supervisor.start("server", {http_server(port)!r})
        wait_for_http("http://127.0.0.1:{port}/", time.monotonic() + 15, child)
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    demo = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(demo.stdout.readline())
        demo.kill()
        demo.wait(timeout=15)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert wait_until(lambda: not alive(server_pid) and not listening(port))
