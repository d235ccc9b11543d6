"""A protocol-level simulator of the Lightsail API's GetInstanceMetricData, for the demo and the e2e test.

It speaks AWS JSON 1.1 as boto3 sends it (``POST /`` with ``X-Amz-Target:
Lightsail_20161128.GetInstanceMetricData``), so the sidecar's real boto3 client reaches it
through ``--lightsail.endpoint-url``. Each instance has a value per metric; the answer holds
one datapoint per period over the asked window, with the asked statistic. An unknown
instance gets Lightsail's ``NotFoundException``; an unsigned request its
``MissingAuthenticationTokenException``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from simulators.httpserver import ThreadedServer

TARGET = "Lightsail_20161128.GetInstanceMetricData"
MAX_BODY_BYTES = 1 << 16
MAX_DATAPOINTS = 1440
# A healthy small instance: checks pass, CPU low, burst capacity nearly full.
HEALTHY = {
    "StatusCheckFailed": 0.0,
    "StatusCheckFailed_Instance": 0.0,
    "StatusCheckFailed_System": 0.0,
    "CPUUtilization": 7.5,
    "BurstCapacityPercentage": 96.0,
}
STATISTICS = ("Minimum", "Maximum", "Sum", "Average", "SampleCount")


class ApiError(Exception):
    """An error Lightsail answers with: HTTP status, ``__type`` and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def metric_data(request: dict[str, Any], values: dict[str, float]) -> dict[str, Any]:
    """Answer one GetInstanceMetricData request from an instance's metric ``values``."""
    for key in ("metricName", "period", "startTime", "endTime", "statistics"):
        if key not in request:
            raise ApiError(400, "InvalidInputException", f"{key} is required")
    name = request["metricName"]
    if name not in values:
        raise ApiError(400, "InvalidInputException", f"unknown metricName {name!r}")
    period, start, end = int(request["period"]), float(request["startTime"]), float(request["endTime"])
    if period < 60 or period % 60 or end <= start:
        raise ApiError(
            400, "InvalidInputException", "period must be a multiple of 60 and endTime after startTime"
        )
    statistics = [s for s in request["statistics"] if s in STATISTICS]
    if not statistics:
        raise ApiError(400, "InvalidInputException", f"statistics must be among {', '.join(STATISTICS)}")
    count = min(int((end - start) // period), MAX_DATAPOINTS)
    points = []
    for index in range(count):
        point: dict[str, Any] = {"timestamp": start + index * period, "unit": request.get("unit", "None")}
        for statistic in statistics:
            point[statistic[0].lower() + statistic[1:]] = 1.0 if statistic == "SampleCount" else values[name]
        points.append(point)
    return {"metricName": name, "metricData": points}


class LightsailSimulator(ThreadedServer):
    """Lightsail's GetInstanceMetricData on 127.0.0.1, for named instances."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.instances: dict[str, dict[str, float]] = {}
        self.requests = 0
        self._lock = threading.Lock()
        super().__init__(host, port, _handler_for(self), "lightsail-sim")

    def add_instance(self, name: str, **values: float) -> None:
        """Add an instance, healthy unless ``values`` say otherwise (metric name -> value)."""
        with self._lock:
            self.instances[name] = {**HEALTHY, **values}

    def answer(self, target: str, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Return the HTTP status and JSON body for one request."""
        try:
            if not authorization.startswith("AWS4-HMAC-SHA256 "):
                raise ApiError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
            if target != TARGET:
                raise ApiError(400, "UnknownOperationException", f"unsupported operation {target!r}")
            try:
                request = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ApiError(400, "SerializationException", "body is not JSON") from None
            with self._lock:
                self.requests += 1
                values = self.instances.get(str(request.get("instanceName")))
            if values is None:
                raise ApiError(
                    400, "NotFoundException", f"instance {request.get('instanceName')!r} not found"
                )
            return 200, metric_data(request, values)
        except ApiError as exc:
            return exc.status, {"__type": exc.code, "message": exc.message}


def _handler_for(sim: LightsailSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                status, body = 413, {"__type": "SerializationException", "message": "body too large"}
            else:
                status, body = sim.answer(
                    self.headers.get("X-Amz-Target", ""),
                    self.headers.get("Authorization", ""),
                    self.rfile.read(length),
                )
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            # A scrape a second would fill the terminal with access lines.
            return

    return Handler
