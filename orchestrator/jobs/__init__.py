"""Scheduled jobs: each runs in a child process and reports one JSON line (docs/CONTRACTS.md).

This package's top level imports nothing heavy: the daemon parses results with it, while
the job modules themselves (which import the Google libraries) load only in the child.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from orchestrator.tokenerror import TokenError

# Job name -> module providing run(config, job, deadline) -> JobResult.
JOB_MODULES = {"port_sheet_sync": "orchestrator.jobs.port_sheet_sync"}

SUCCESS = "success"
FAILURE = "failure"
TIMEOUT = "timeout"
SKIPPED = "skipped"
RESULTS = (SUCCESS, FAILURE, TIMEOUT, SKIPPED)


@dataclass(frozen=True)
class JobResult:
    """What one run of a job reports: result, a readable detail and credential health."""

    result: str
    detail: str
    token_error: TokenError | None = None
    credential_ok: dict[str, bool] = field(default_factory=dict)
    credential_file_insecure: dict[str, bool] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_json(self) -> str:
        """Render the one-line JSON the child prints on stdout."""
        return json.dumps(
            {
                "result": self.result,
                "detail": self.detail,
                "token_error": self.token_error.as_dict() if self.token_error else None,
                "credential_ok": self.credential_ok,
                "credential_file_insecure": self.credential_file_insecure,
                "warnings": list(self.warnings),
            }
        )


def parse_result(stdout: str, exit_code: int, stderr_tail: str = "") -> JobResult:
    """Parse a job child's stdout (its last JSON line); malformed output is a failure."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        data = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("result") not in (SUCCESS, FAILURE):
        detail = f"job child printed no result line (exit code {exit_code})"
        return JobResult(FAILURE, f"{detail}: {stderr_tail}" if stderr_tail else detail)
    result = data["result"]
    if (result == SUCCESS) != (exit_code == 0):
        result = FAILURE
    token = data.get("token_error")
    return JobResult(
        result=result,
        detail=str(data.get("detail", ""))[:500],
        token_error=TokenError.from_dict(token) if isinstance(token, dict) else None,
        credential_ok=_flags(data.get("credential_ok")),
        credential_file_insecure=_flags(data.get("credential_file_insecure")),
        warnings=tuple(str(w) for w in data.get("warnings", []) if isinstance(w, str))[:10],
    )


def _flags(value: Any) -> dict[str, bool]:
    if not isinstance(value, dict):
        return {}
    return {str(k): bool(v) for k, v in value.items() if isinstance(v, bool)}
