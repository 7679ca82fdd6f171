"""Helpers for cross-process node tests: real processes, real DDS, no mocks.

A test starts node processes with `NodeProcess` (the console script, our DDS
profile, a per-session ROS_DOMAIN_ID) and subscribes from the pytest process,
which is a separate process from the node. Everything is stopped with SIGINT
and checked for a clean exit.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent


def executable(name: str) -> str:
    """The console script `name` from this venv (falls back to PATH)."""
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def ros_args(params: dict[str, Any] | None = None, namespace: str | None = None,
             remaps: dict[str, str] | None = None, params_file: str | Path | None = None,
             name: str | None = None) -> list[str]:
    args = ["--ros-args"]
    if params_file:
        args += ["--params-file", str(params_file)]
    for key, value in (params or {}).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        args += ["-p", f"{key}:={value}"]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    if name:
        args += ["-r", f"__node:={name}"]
    for src, dst in (remaps or {}).items():
        args += ["-r", f"{src}:={dst}"]
    return args


class NodeProcess:
    """A node (or any command) in its own process, output captured to a file."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.command = command
        self.log = tempfile.NamedTemporaryFile("w+", prefix="node_", suffix=".log", delete=False)
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env or dict(os.environ), start_new_session=True)

    @classmethod
    def node(cls, exe: str, params: dict[str, Any] | None = None, **kwargs: Any) -> "NodeProcess":
        return cls([executable(exe), *ros_args(params, **kwargs)])

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT, wait, and return the exit code (kill after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError(f"{self.command[0]} ignored SIGINT for {timeout}s:\n"
                                     + self.output()[-3000:])
        if self.proc.returncode != 0:  # shown by pytest with the failing `stop() == 0`
            print(f"{self.command[0]} exited {self.proc.returncode} on SIGINT:\n{self.output()[-3000:]}")
        return self.proc.returncode

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            try:
                self.stop()
            except AssertionError:
                pass
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


def spin_until(node: Node, predicate: Callable[[], bool], timeout: float) -> bool:
    """Spin `node` until predicate() or timeout; returns predicate()."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


def collect(node: Node, topics: dict[str, type], count: int, timeout: float,
            qos: QoSProfile | int = 10, stop_when: Callable[[dict], bool] | None = None
            ) -> dict[str, list[tuple[float, Any]]]:
    """Subscribe to `topics` ({name: type}) and gather (receive_time, msg) until
    each has `count` messages (or stop_when(got)) or `timeout`."""
    got: dict[str, list[tuple[float, Any]]] = {t: [] for t in topics}
    subs = [node.create_subscription(
        typ, topic, lambda m, t=topic: got[t].append((time.monotonic(), m)), qos)
        for topic, typ in topics.items()]
    try:
        done = stop_when or (lambda g: all(len(v) >= count for v in g.values()))
        spin_until(node, lambda: done(got), timeout)
    finally:
        for sub in subs:
            node.destroy_subscription(sub)
    return got


def wait_for_topics(node: Node, topics: Iterable[str], timeout: float) -> bool:
    wanted = set(topics)
    return spin_until(
        node, lambda: wanted <= {n for n, _ in node.get_topic_names_and_types()}, timeout)


def projected_pixels(msg: Any, field: str, projection: Any) -> tuple[int, Any, Any, Any]:
    """The independent check of a fused cloud: project its x, y, z with a 3x4 `projection`
    (e.g. KITTI P2 @ R0_rect @ Tr_velo_to_cam). Returns (how many points have `field`, the
    `field` values of those that land clearly inside a pixel (not within 0.01 px of a border,
    where rounding could go either way), and those pixels' rows and columns)."""
    import numpy as np

    from depth_ai_nodes.ros import conversions as conv

    cols = conv.pointcloud2_to_fields(msg, ["x", "y", "z", field])
    xyz = np.stack([cols["x"], cols["y"], cols["z"]], 1).astype(np.float64)
    ref = np.c_[xyz, np.ones(len(xyz))] @ np.asarray(projection).T
    uv = ref[:, :2] / ref[:, 2:3]
    seen = np.isfinite(cols[field])
    clear = seen & np.all(np.abs(uv - np.round(uv)) < 0.49, axis=1)
    iu, iv = np.floor(uv[clear, 0] + 0.5).astype(int), np.floor(uv[clear, 1] + 0.5).astype(int)
    return int(seen.sum()), cols[field][clear], iv, iu
