"""/diagnostics for every node: one status per component, rates and counters.

diagnostic_updater is not on PyPI, so this is the small part of it we need:
a node owns one `Diagnostics`, registers `RateMeter`s and counters on it, sets
levels and messages as things happen, and it publishes a DiagnosticArray at
a fixed period (1 Hz by default, like diagnostic_updater).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

# Levels are single bytes in diagnostic_msgs (b'\x00' = OK ... b'\x03' = STALE).
OK, WARN, ERROR, STALE = (DiagnosticStatus.OK, DiagnosticStatus.WARN,
                          DiagnosticStatus.ERROR, DiagnosticStatus.STALE)
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}


class RateMeter:
    """Events per second over a sliding window, plus latency statistics."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._stamps: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=300)
        self.count = 0

    def tick(self, latency_s: float | None = None, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._stamps.append(now)
        self.count += 1
        if latency_s is not None:
            self._latencies.append(latency_s)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._stamps and now - self._stamps[0] > self.window_s:
            self._stamps.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        if len(self._stamps) < 2:
            return 0.0
        span = self._stamps[-1] - self._stamps[0]
        return (len(self._stamps) - 1) / span if span > 0 else 0.0

    def latency_ms(self, quantile: float = 0.5) -> float:
        if not self._latencies:
            return float("nan")
        ordered = sorted(self._latencies)
        return 1000.0 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


@dataclass
class _Status:
    name: str
    level: bytes = OK
    message: str = "starting"
    values: dict[str, str] = field(default_factory=dict)
    rates: dict[str, RateMeter] = field(default_factory=dict)
    expected_hz: dict[str, float] = field(default_factory=dict)


class Diagnostics:
    """Publishes one DiagnosticStatus per registered component on /diagnostics."""

    def __init__(self, node: Node, hardware_id: str = "", period_s: float = 1.0,
                 before_publish: Callable[[], None] | None = None) -> None:
        """`before_publish` runs on the publishing timer first: a node refreshes its status
        there instead of on a timer of its own (an executor wake-up costs 0.5-1 ms CPU on the
        2-core reference machine)."""
        self._node = node
        self._hardware_id = hardware_id
        self._lock = threading.Lock()
        self._statuses: dict[str, _Status] = {}
        self._before_publish = before_publish
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timer = node.create_timer(period_s, self.publish)

    def _status(self, component: str) -> _Status:
        full = f"{self._node.get_name()}: {component}"
        if component not in self._statuses:
            self._statuses[component] = _Status(full)
        return self._statuses[component]

    def set_hardware_id(self, hardware_id: str) -> None:
        self._hardware_id = hardware_id

    def rate(self, component: str, stream: str, expected_hz: float = 0.0) -> RateMeter:
        """The RateMeter for `stream` of `component` (created on first use)."""
        with self._lock:
            status = self._status(component)
            if stream not in status.rates:
                status.rates[stream] = RateMeter()
                if expected_hz > 0:
                    status.expected_hz[stream] = expected_hz
            return status.rates[stream]

    def set(self, component: str, level: bytes, message: str, **values: object) -> None:
        """Set a component's level, message and key/values (values merge)."""
        with self._lock:
            status = self._status(component)
            status.level, status.message = level, message
            status.values.update({k: _fmt(v) for k, v in values.items()})

    def update(self, component: str, **values: object) -> None:
        """Merge key/values without touching level or message."""
        with self._lock:
            self._status(component).values.update({k: _fmt(v) for k, v in values.items()})

    def level(self, component: str) -> bytes:
        with self._lock:
            return self._status(component).level

    def snapshot(self) -> DiagnosticArray:
        array = DiagnosticArray()
        array.header.stamp = self._node.get_clock().now().to_msg()
        now = time.monotonic()
        with self._lock:
            for status in self._statuses.values():
                msg = DiagnosticStatus(level=status.level, name=status.name,
                                       message=status.message, hardware_id=self._hardware_id)
                level = status.level
                for stream, meter in status.rates.items():
                    hz = meter.rate(now)
                    msg.values.append(KeyValue(key=f"{stream} rate (Hz)", value=f"{hz:.2f}"))
                    msg.values.append(KeyValue(key=f"{stream} count", value=str(meter.count)))
                    lat = meter.latency_ms()
                    if lat == lat:  # not NaN
                        msg.values.append(KeyValue(key=f"{stream} latency median (ms)",
                                                   value=f"{lat:.2f}"))
                    expected = status.expected_hz.get(stream, 0.0)
                    if expected > 0 and level == OK and hz < 0.5 * expected:
                        level = WARN
                        msg.message = f"{stream} at {hz:.1f} Hz, expected {expected:.1f} Hz"
                msg.level = level
                msg.values.extend(KeyValue(key=k, value=v) for k, v in status.values.items())
                array.status.append(msg)
        return array

    def publish(self) -> None:
        if self._before_publish is not None:
            self._before_publish()
        self._pub.publish(self.snapshot())


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
