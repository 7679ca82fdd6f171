"""Approximate-time matching of clouds to camera frames that never stalls the clouds. ROS-free.

A cloud is matched to the camera frame whose (offset-corrected) stamp is nearest to the
cloud's reference time, if within `slop`. Decision rule, per cloud:
- a frame within slop exists and a frame at or after the reference time has arrived (so
  no nearer one can still come): matched now;
- the newest frame is later than reference + slop (any later one would be farther):
  decided now, matched to the best within slop or unmatched;
- no camera frame has arrived for `silent_after` seconds (or ever): the camera is
  silent, nothing is worth waiting for: unmatched now;
- otherwise the cloud waits, but never longer than `timeout` (receive-clock seconds):
  then it goes out with the best within slop or unmatched. A late camera therefore delays
  clouds by at most `timeout`, a silent one not at all, and neither ever drops them.
Times are float seconds; the caller applies the per-sensor offsets with `offset`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
C = TypeVar("C")


@dataclass
class Match(Generic[C, T]):
    cloud: C
    cloud_time: float
    frame: T | None          # None: no camera frame within slop (unmatched)
    frame_time: float | None
    waited: float            # receive-clock seconds the cloud was held


@dataclass
class _Pending(Generic[C]):
    cloud: C
    ref: float
    arrived: float


@dataclass
class ApproxTimeMatcher(Generic[C, T]):
    slop: float = 0.05
    timeout: float = 0.2
    max_frames: int = 60
    max_pending: int = 8
    silent_after: float = 1.0   # receive-clock seconds without frames that make the camera silent
    frame_offset: float = 0.0   # added to every camera stamp (camera clock -> common clock)
    cloud_offset: float = 0.0   # added to every cloud reference time
    frames: deque = field(default_factory=deque)
    pending: deque = field(default_factory=deque)
    matched: int = 0
    unmatched: int = 0
    overflow: int = 0
    last_frame_arrival: float | None = None

    def add_frame(self, stamp: float, frame: T, now: float) -> list[Match]:
        """A camera frame arrived; returns clouds that can now be decided."""
        t = stamp + self.frame_offset
        self.last_frame_arrival = now
        if self.frames and t < self.frames[-1][0]:  # out of order: keep the buffer sorted
            items = sorted([*self.frames, (t, frame)], key=lambda f: f[0])
            self.frames = deque(items)
        else:
            self.frames.append((t, frame))
        while len(self.frames) > self.max_frames:
            self.frames.popleft()
        return self.poll(now)

    def add_cloud(self, stamp: float, cloud: C, now: float) -> list[Match]:
        """A cloud arrived (stamp = its reference time before offset); returns decided clouds
        (possibly older pending ones pushed out when more than max_pending wait)."""
        self.pending.append(_Pending(cloud, stamp + self.cloud_offset, now))
        out: list[Match] = []
        while len(self.pending) > self.max_pending:
            self.overflow += 1
            out.append(self._decide(self.pending.popleft(), now))
        return out + self.poll(now)

    def poll(self, now: float) -> list[Match]:
        """Decide every pending cloud that can be decided (call on a timer too)."""
        out: list[Match] = []
        keep: deque = deque()
        silent = self.last_frame_arrival is None or now - self.last_frame_arrival >= self.silent_after
        for p in self.pending:
            best = self._best(p.ref)
            newest = self.frames[-1][0] if self.frames else None
            ready = (best is not None and newest is not None and newest >= p.ref) \
                or (newest is not None and newest > p.ref + self.slop) \
                or silent or (now - p.arrived >= self.timeout)
            if ready:
                out.append(self._decide(p, now, best))
            else:
                keep.append(p)
        self.pending = keep
        return out

    def _best(self, ref: float) -> tuple[float, Any] | None:
        best = None
        for t, f in self.frames:
            dt = abs(t - ref)
            if dt <= self.slop and (best is None or dt < abs(best[0] - ref)):
                best = (t, f)
        return best

    def _decide(self, p: _Pending, now: float, best: tuple[float, Any] | None = None) -> Match:
        best = best if best is not None else self._best(p.ref)
        if best is None:
            self.unmatched += 1
            return Match(p.cloud, p.ref, None, None, now - p.arrived)
        self.matched += 1
        return Match(p.cloud, p.ref, best[1], best[0], now - p.arrived)

    @property
    def match_rate(self) -> float:
        total = self.matched + self.unmatched
        return self.matched / total if total else 0.0
