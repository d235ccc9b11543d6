"""A stand-in session child that follows docs/CONTRACTS.md without calling any API.

The daemon runs it through JADA_SESSION_COMMAND. Its behaviour comes from a
``[scenario:NAME:ARG]`` marker in the task's prompt, the same markers the Claude simulator
understands, so a test reads the same whether it runs this or the real child:

- ``tool_turns:N`` / ``complete``: N turns (default 1), then completed (exit 0)
- ``tool_forever``: turns until max_turns, then max_turns (exit 1)
- ``request_human``: asks a person through the store, then completed (exit 0)
- ``unauthorized``: one failed call, then error (exit 2)
- ``slow:S``: a turn every S seconds, never finishing (for timeouts and SIGTERM)
- ``hang``: no event at all, never finishing
- ``crash``: exits 3 with no result
- ``garbage``: malformed event lines, then completed
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

from orchestrator import config
from orchestrator.store import Store

MARKER = re.compile(r"\[scenario:([a-z_]+)(?::([0-9.]+))?\]")
USAGE = {"input": 120, "output": 40, "cache_read": 900, "cache_creation": 0}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("session")
    parser.add_argument("run")
    parser.add_argument("task_id", type=int)
    parser.add_argument("--session-id", type=int, required=True)
    parser.add_argument("--events-fd", type=int, required=True)
    args = parser.parse_args()
    cfg = config.load(args.config)
    events = os.fdopen(args.events_fd, "w", buffering=1)
    store = Store(cfg.store_path)
    prompt = store.get_task(args.task_id).prompt
    match = MARKER.search(prompt)
    name, arg = (match.group(1), match.group(2)) if match else ("complete", None)

    def emit(**event: object) -> None:
        events.write(json.dumps(event) + "\n")

    def turn(number: int) -> None:
        emit(event="llm_request", model=cfg.model, outcome="success", duration_seconds=0.01, usage=USAGE)
        store.update_session_progress(args.session_id, number, {k: v * number for k, v in USAGE.items()})
        emit(event="turn", turns=number)

    if name in ("tool_turns", "complete", "request_human", "garbage"):
        if name == "garbage":
            events.write("not json\n")
            events.write('{"event": "turn", "turns": -1}\n')
            events.write('{"event": "llm_request", "model": "m", "outcome": "made_up"}\n')
        turns = int(arg or 1)
        for number in range(1, turns + 1):
            turn(number)
        if name == "request_human":
            store.request_human(args.task_id, "Which e-signature provider should the crew pages use?")
        emit(event="result", reason="completed", turns=turns, summary="did the work", last_text="Done.")
        return 0
    if name == "tool_forever":
        for number in range(1, cfg.max_turns + 1):
            turn(number)
        emit(
            event="result",
            reason="max_turns",
            turns=cfg.max_turns,
            summary=f"refactored {cfg.max_turns} files",
            last_text="Next: the header component.",
        )
        return 1
    if name == "unauthorized":
        emit(
            event="llm_request",
            model=cfg.model,
            outcome="authentication_error",
            duration_seconds=0.01,
            usage={},
        )
        emit(event="result", reason="error", turns=0, summary="authentication_error: invalid x-api-key")
        return 2
    if name == "slow":
        number = 0
        while True:
            number += 1
            turn(number)
            time.sleep(float(arg or 0.2))
    if name == "hang":
        while True:
            time.sleep(3600)
    if name == "crash":
        return 3
    print(f"fake session: unknown scenario {name}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
