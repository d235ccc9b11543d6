"""Per-turn overhead of the session loop against a Claude API simulator that answers at once.

The simulator runs as its own process (so it does not share our GIL) in the tool_forever
scenario. Two loops drive it for the same number of turns, alternately, several rounds:

- reference: bare SDK calls with the same growing conversation (append the answer, answer
  each tool_use with a fixed tool_result), no tools run, no store, no events;
- session: the real ``orchestrator.session.Session`` with a real SQLite store and the event
  pipe, running the real tools in a task workspace.

Overhead per turn = session - reference. The tools' own run time (bash spawns a process,
the editor writes files) is the agent's work, not the orchestrator's, so it is measured and
printed separately, and the target applies to the overhead without it.

    .venv/bin/python bench/bench_turn_overhead.py     # JADA_BENCH_ROUNDS=5, JADA_BENCH_TURNS=30

Target (issue 2): orchestrator overhead at most 5 ms per turn.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anthropic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.config import Config  # noqa: E402
from orchestrator.session import CallWatch, EventSink, Session, make_client, system_blocks  # noqa: E402
from orchestrator.store import Store  # noqa: E402
from orchestrator.tools import tool_definitions  # noqa: E402

ROUNDS = int(os.environ.get("JADA_BENCH_ROUNDS", "5"))
TURNS = int(os.environ.get("JADA_BENCH_TURNS", "30"))
MODEL = "claude-sonnet-4-6"
TARGET_MS = 5.0


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    """Start the simulator process and return it with its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.claude", "--port", "0", "--scenario", "tool_forever"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, line.split(" on ")[1].split()[0]


def reference_round(client: anthropic.Anthropic, turns: int) -> float:
    """Run ``turns`` bare SDK calls over a growing conversation; return seconds per turn."""
    system = system_blocks("")
    tools = tool_definitions()
    messages = [{"role": "user", "content": "Task 1: bench\n\nWork. [scenario:tool_forever]"}]
    started = time.perf_counter()
    for _ in range(turns):
        message = client.messages.create(
            model=MODEL, max_tokens=4096, system=system, tools=tools, messages=messages
        )
        content = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
        messages.append({"role": "assistant", "content": content})
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": b["id"], "content": "ok"}
                    for b in content
                    if b["type"] == "tool_use"
                ],
            }
        )
    return (time.perf_counter() - started) / turns


def session_round(config: Config, store: Store, events: EventSink, turns: int) -> tuple[float, float]:
    """Run one real session of ``turns`` turns; return (seconds per turn, tool seconds per turn)."""
    task_id = store.add_task("bench", "Work. [scenario:tool_forever]")
    session_id = store.start_session(task_id, day_limit=10**6)
    watch = CallWatch()
    started = time.perf_counter()
    session = Session(
        config,
        store.get_task(task_id),
        store,
        make_client(config, "sk-bench", watch),
        watch,
        events,
        session_id,
    )
    result = session.run()
    elapsed = time.perf_counter() - started
    assert result.reason == "max_turns" and result.turns == turns, result
    return elapsed / turns, session.toolbox.seconds / turns


def main() -> int:
    process, base_url = start_simulator()
    try:
        with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
            config = Config(
                path=Path(tmp) / "config.toml",
                state_dir=Path(tmp),
                model=MODEL,
                max_turns=TURNS,
                anthropic_base_url=base_url,
                anthropic_max_retries=0,
            )
            store = Store(config.store_path)
            events = EventSink(devnull)
            client = anthropic.Anthropic(api_key="sk-bench", base_url=base_url, max_retries=0)
            # Warm up: imports, connection pools, SQLite pages.
            reference_round(client, 3)
            session_round(config, store, events, TURNS)
            reference, loop, tools = [], [], []
            for _ in range(ROUNDS):
                reference.append(reference_round(client, TURNS))
                per_turn, tool_time = session_round(config, store, events, TURNS)
                loop.append(per_turn)
                tools.append(tool_time)
            store.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    ref_ms = statistics.median(reference) * 1000
    loop_ms = statistics.median(loop) * 1000
    tool_ms = statistics.median(tools) * 1000
    overhead_ms = loop_ms - ref_ms - tool_ms
    print(f"turn overhead: {ROUNDS} rounds of {TURNS} turns, simulator answering at once (tool_forever)")
    print(f"  reference (bare SDK calls, same conversation): {ref_ms:7.2f} ms/turn")
    print(f"  session loop (store, events, tools):           {loop_ms:7.2f} ms/turn")
    print(f"  ratio session / reference:                     {loop_ms / ref_ms:7.2f}")
    print(f"  of which the tools' own work:                  {tool_ms:7.2f} ms/turn")
    print(f"  orchestrator overhead (session - reference - tools): {overhead_ms:.2f} ms/turn")
    print(f"  target: at most {TARGET_MS} ms/turn")
    verdict = "PASS" if overhead_ms <= TARGET_MS else "FAIL"
    print(f"  {verdict}")
    return 0 if overhead_ms <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
