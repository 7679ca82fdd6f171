"""What every camera source hands the camera node: one synchronized Frameset.

Sources are ROS-free so they can be tested and benchmarked without DDS; the
node only converts Framesets to messages. A source owns its own pacing (a live
camera or real-time playback blocks in `read`; the synthetic scene sleeps to
its fps) and its own recovery (reconnecting after an unplug), and reports
where it is through `state`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

# Source states, as they appear in /diagnostics.
STREAMING, RECONNECTING, ENDED = "streaming", "reconnecting", "ended"
STARTING, STOPPED = "starting", "stopped"


class SourceError(RuntimeError):
    """A source cannot be opened as configured; the message says what to fix.

    The node turns it into a ConfigError at start-up (exit 2)."""


@dataclass
class Frameset:
    """One synchronized capture. Every image shares `stamp_ns`.

    Images are numpy arrays in the encodings the node publishes: color rgb8
    (H, W, 3), ir mono8 (H, W), depth uint16 in depth units (H, W). `*_model`
    are CameraModels consistent with their image (after decimation too); the
    transforms map points of the depth optical frame to the other optical frame.
    A stream absent from the source (no IR in a recording) is None."""

    stamp_ns: int
    depth: np.ndarray | None
    color: np.ndarray | None = None
    ir: np.ndarray | None = None
    gt_depth_m: np.ndarray | None = None
    depth_model: Any = None   # core.camera_model.CameraModel
    color_model: Any = None
    ir_model: Any = None
    gt_model: Any = None      # ground truth keeps the full, undecimated depth geometry
    depth_to_color: Any = None  # core.transforms.RigidTransform
    depth_to_ir: Any = None
    depth_scale: float = 0.001  # metres per depth unit
    frame_number: int = 0
    info: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class FrameSource(Protocol):
    """A camera: start, read framesets, stop. `state` is one of the constants above."""

    state: str
    info: dict[str, str]

    def available_streams(self) -> set[str]:
        """Streams the started source delivers: 'color', 'infra1', 'depth', 'ground_truth'."""

    def start(self) -> None: ...

    def read(self, timeout: float) -> Frameset | None:
        """The next frameset, or None after `timeout` s (or once ended)."""

    def stop(self) -> None: ...


def frames_missing(last: int | None, current: int) -> int:
    """Frame numbers skipped between two delivered framesets: what the device's one-frameset
    queue or the scene's real-time skip dropped while the consumer was busy. A numbering that
    restarts (a reconnect, a looping recording) or sources that do not number (all 0) drop
    nothing."""
    if last is None or not 1 < current - last < 1_000_000:
        return 0
    return current - last - 1


class Backoff:
    """Exponential backoff for reconnect attempts: initial, x2 each failure, capped.

    `clock` is injectable so the schedule can be tested without waiting."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 8.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.initial_s, self.max_s, self._clock = initial_s, max_s, clock
        self.delay_s = initial_s
        self.attempts = 0
        self.next_try = clock()

    def due(self) -> bool:
        return self._clock() >= self.next_try

    def failed(self) -> float:
        """Record a failed attempt; returns the delay until the next one."""
        self.attempts += 1
        delay = self.delay_s
        self.next_try = self._clock() + delay
        self.delay_s = min(self.max_s, self.delay_s * 2.0)
        return delay

    def reset(self) -> None:
        self.delay_s, self.attempts, self.next_try = self.initial_s, 0, self._clock()


def parse_profile(text: str, what: str) -> tuple[int, int, int]:
    """'640,480,30' (also 640x480x30) -> (width, height, fps); 0 means any."""
    parts = [p for p in str(text).replace("x", ",").replace(" ", "").split(",") if p]
    try:
        w, h, fps = (int(p) for p in parts)
    except ValueError:
        raise SourceError(f"{what}={text!r} is not a profile; write it as 'width,height,fps', "
                          f"e.g. '640,480,30'") from None
    if min(w, h, fps) < 0:
        raise SourceError(f"{what}={text!r}: width, height and fps must be >= 0")
    return w, h, fps
