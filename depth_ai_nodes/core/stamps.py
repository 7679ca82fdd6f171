"""Time sanity for stamped inputs, ROS-free.

A stamp far ahead of the node's clock would stay "the newest frame" and poison matching;
one far behind it is stale. `StampPolicy` says how far is too far (0 turns a check off);
`StampGuard` applies it per stream and also notices a stream whose time jumps BACK by more
than `reset_after_s` (a bag that loops, a sensor that reboots, a sim clock reset): the caller
then clears what it buffered for that stream instead of matching against a dead timeline.

The clock is the node's ROS clock (simulated time when use_sim_time is set); a zero clock
means sim time has not started yet, and then only the backwards rule applies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .rejection import Reason, Rejected

__all__ = ["StampPolicy", "StampGuard", "SequenceGaps", "clock_latency"]


@dataclass(frozen=True)
class StampPolicy:
    max_ahead_s: float = 2.0      # stamp later than the clock by more: rejected (0: off)
    max_age_s: float = 0.0        # stamp earlier than the clock by more: rejected (0: off)
    reset_after_s: float = 1.0    # a stream jumping back by more than this restarts its timeline


@dataclass
class StampGuard:
    policy: StampPolicy = field(default_factory=StampPolicy)
    last: dict[str, float] = field(default_factory=dict)

    def check(self, stream: str, stamp_s: float, now_s: float) -> bool:
        """Raise Rejected(BAD_STAMP) for a stamp out of policy; return True when this stamp
        restarts the stream's timeline (time went back by more than reset_after_s)."""
        p = self.policy
        if not math.isfinite(stamp_s):
            raise Rejected(Reason.BAD_STAMP, f"{stream} stamp is not a finite time")
        if now_s > 0.0:
            ahead = stamp_s - now_s
            if p.max_ahead_s > 0 and ahead > p.max_ahead_s:
                raise Rejected(Reason.BAD_STAMP, f"{stream} stamp is {ahead:.3f} s ahead of this node's "
                               f"clock (max_stamp_ahead {p.max_ahead_s:g} s): clocks not synchronised, "
                               f"or a bag played without --clock/use_sim_time")
            if p.max_age_s > 0 and -ahead > p.max_age_s:
                raise Rejected(Reason.BAD_STAMP, f"{stream} stamp is {-ahead:.3f} s behind this node's "
                               f"clock (max_stamp_age {p.max_age_s:g} s)")
        prev = self.last.get(stream)
        self.last[stream] = stamp_s if prev is None else max(prev, stamp_s)
        if prev is not None and stamp_s < prev - p.reset_after_s:
            self.last[stream] = stamp_s
            return True
        return False


@dataclass
class SequenceGaps:
    """Messages lost before they reached the node, from the publishers' sequence numbers
    (DDS numbers each writer's samples 1, 2, 3 ...). A number that goes back means the
    publisher restarted: counting starts again from it."""

    last: dict[object, int] = field(default_factory=dict)
    missing: int = 0

    def update(self, source: object, seq: int | None) -> int:
        """Record sequence number `seq` of `source`; return how many were skipped before it."""
        if seq is None or seq <= 0:
            return 0
        prev = self.last.get(source)
        self.last[source] = seq
        if prev is None or seq <= prev:
            return 0
        gap = seq - prev - 1
        self.missing += gap
        return gap


def clock_latency(now_s: float, stamp_s: float, max_s: float = 10.0) -> float | None:
    """now - stamp when the stamp comes from this clock (0 .. max_s behind it); None otherwise:
    a recording with its original stamps (years ago) or another clock has no such latency, and
    reporting 264,128,481,656 ms helps nobody."""
    lat = now_s - stamp_s
    return lat if 0.0 <= lat < max_s else None
