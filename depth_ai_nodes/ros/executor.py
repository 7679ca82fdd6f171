"""Which rclpy executor runs a process's callbacks, and callbacks that work under either.

rclpy's Python SingleThreadedExecutor costs about 200 us of CPU per message on a small
x86 core (it rebuilds a wait set in Python for every message); the C++
`rclpy.experimental.EventsExecutor` costs about half as much per message
(bench/RESULTS.md, stop 28). A node that takes 120 camera messages a second spends a
large part of its core there, so every node and the runner's monitor use the
EventsExecutor where rclpy has one. DEPTH_AI_EXECUTOR=single selects the Python
executor instead (for comparison, or should a future rclpy change the experimental
one).

Two quirks of the EventsExecutor in the Kilted wheels, handled here:
- its `spin()` runs no callback at all (not even a timer), while `spin_once()` works:
  `make_executor` returns a loop of `spin_once` calls as the way to spin;
- a callback that takes the message info is called with ONE argument, the tuple
  (msg, info), where the Python executor passes two: `WithInfo` accepts both.
"""
from __future__ import annotations

import inspect
import os
from typing import Any, Callable

import rclpy
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

EXECUTOR_ENV = "DEPTH_AI_EXECUTOR"
EXECUTORS = ("events", "single")
SPIN_SLICE_S = 0.1  # how often a spin loop looks at rclpy.ok() when nothing arrives


def executor_kind() -> str:
    """'events' or 'single', from DEPTH_AI_EXECUTOR (default: events); 'single' where this
    rclpy has no EventsExecutor."""
    kind = os.environ.get(EXECUTOR_ENV, "events").strip().lower() or "events"
    if kind not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={kind!r}: use one of {', '.join(EXECUTORS)}")
    if kind == "events" and _events_executor_class() is None:
        return "single"
    return kind


def _events_executor_class() -> Any:
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        return None
    return EventsExecutor


def make_executor(threads: int = 1) -> tuple[Any, Callable[[], None]]:
    """(executor, spin): the executor to add nodes to, and the call that spins it until the
    context shuts down (raises ExternalShutdownException then, as rclpy's spin does).
    More than one thread: rclpy's MultiThreadedExecutor."""
    if threads > 1:
        multi = MultiThreadedExecutor(threads)
        return multi, multi.spin
    if executor_kind() == "single":
        single = SingleThreadedExecutor()
        return single, single.spin
    events = _events_executor_class()()

    def spin() -> None:
        while rclpy.ok():
            events.spin_once(timeout_sec=SPIN_SLICE_S)
    return events, spin


_MSG_AND_INFO = inspect.Signature([inspect.Parameter("msg", inspect.Parameter.POSITIONAL_ONLY),
                                   inspect.Parameter("info", inspect.Parameter.POSITIONAL_ONLY)])


class WithInfo:
    """A subscription callback that takes the message and its MessageInfo, under either
    executor: rclpy reads its signature as (msg, info); it is called as fn(msg, info) by the
    Python executors and as fn((msg, info)) by the EventsExecutor."""

    __signature__ = _MSG_AND_INFO

    def __init__(self, fn: Callable[[Any, Any], None]) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> None:
        if len(args) == 1:  # the EventsExecutor: one (msg, info) tuple
            msg, info = args[0]
        else:
            msg, info = args
        self.fn(msg, info)
