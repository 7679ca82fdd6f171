#!/usr/bin/env python3
"""First start after a fresh install: seconds from starting camera_node to its first frame.

Installs this repository the way a user does, into a new folder, then starts camera_node from
that install and times process start -> first colour image received (a subscriber in this
process), on the built-in scene and on a RealSense recording:
- `pip`: a new venv and `pip install <repo>` (the wheel build compiles the numba kernels into
  it: depth_ai_nodes/precompile.py);
- `colcon`: `colcon build` of a clone, as on a ROS install (the CMake install step compiles them).
Baseline, same install, same run: the numba caches removed from the installed package, i.e.
what every first start cost before (the JIT compiles the kernels during the start). Each
start is repeated `--starts` times (the baseline's caches are removed before each).

    python bench/bench_first_start.py [--install pip|colcon|both] [--starts 2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RECORDING = REPO.parent / "shared" / "data" / "realsense" / "d435_single_depth_color_640x480.bag"

from depth_ai_nodes.ros.dds import clean_stale_fastdds_shm, dds_environment  # noqa: E402


def _tracked_tree(dest: Path) -> None:
    """A clean copy of the tracked files (what a clone holds), working-tree versions."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def install_pip(work: Path) -> tuple[list[str], dict[str, str], Path]:
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    src = work / "src"
    _tracked_tree(src)
    t0 = time.monotonic()
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(src)], check=True)
    print(f"pip install: {time.monotonic() - t0:.0f} s", flush=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    return [str(venv / "bin" / "camera_node")], {}, site / "depth_ai_nodes"


def install_colcon(work: Path) -> tuple[list[str], dict[str, str], Path]:
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent)) or shutil.which("colcon")
    if colcon is None:
        raise SystemExit("colcon is not installed (scripts/dev setup installs it)")
    _tracked_tree(work / "src" / "depth_ai_nodes")
    prefix = sys.prefix
    env = {**os.environ, "AMENT_PREFIX_PATH": prefix, "CMAKE_PREFIX_PATH": prefix,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.monotonic()
    subprocess.run([colcon, "build", "--packages-select", "depth_ai_nodes", "--event-handlers", "console_direct-",
                    "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
                   cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    print(f"colcon build: {time.monotonic() - t0:.0f} s", flush=True)
    install = work / "install" / "depth_ai_nodes"
    site = next(install.glob("lib/python3*/site-packages"))
    run_env = {"AMENT_PREFIX_PATH": f"{install}{os.pathsep}{prefix}", "PYTHONPATH": str(site),
               "LD_LIBRARY_PATH": f"{install / 'lib'}{os.pathsep}{os.environ.get('LD_LIBRARY_PATH', '')}"}
    return [sys.executable, str(install / "lib" / "depth_ai_nodes" / "camera_node")], run_env, site / "depth_ai_nodes"


def remove_caches(package: Path) -> int:
    gone = 0
    for f in list(package.rglob("*.nbi")) + list(package.rglob("*.nbc")):
        f.unlink()
        gone += 1
    return gone


def first_frame(cmd: list[str], extra_env: dict[str, str], params: list[str], node, topic_hits: list[float],
                timeout: float = 120.0) -> float:
    """Seconds from starting the node process to the first colour image received."""
    import rclpy

    env = dds_environment({k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"})
    env.update(extra_env)
    topic_hits.clear()
    t0 = time.monotonic()
    proc = subprocess.Popen([*cmd, "--ros-args", *params], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while not topic_hits and time.monotonic() - t0 < timeout and proc.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.01)
        if not topic_hits:
            proc.kill()
            raise RuntimeError(f"no frame within {timeout} s:\n{proc.communicate()[0].decode()[-3000:]}")
        return topic_hits[0] - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        clean_stale_fastdds_shm()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--install", choices=("pip", "colcon", "both"), default="both")
    ap.add_argument("--starts", type=int, default=2, help="starts per case (median reported)")
    args = ap.parse_args()
    os.environ.update(dds_environment())
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_first_start")
    hits: list[float] = []
    node.create_subscription(Image, "/fs/camera/color/image_raw", lambda _m: hits.append(time.monotonic()),
                             qos_profile_sensor_data, raw=True)
    sources = {"built-in scene": ["-p", "source:=synthetic"]}
    if RECORDING.is_file():
        sources["recording (D435 .bag)"] = ["-p", "source:=file", "-p", f"file_path:={RECORDING}",
                                            "-p", "playback.loop:=true"]  # one frameset: loop it
    else:
        print(f"no recording at {RECORDING}: the recording case is skipped")
    rows = []
    for kind in (("pip", "colcon") if args.install == "both" else (args.install,)):
        with tempfile.TemporaryDirectory(prefix=f"first_start_{kind}_") as tmp:
            cmd, env, package = (install_pip if kind == "pip" else install_colcon)(Path(tmp))
            for label, params in sources.items():
                params = [*params, "-r", "__ns:=/fs"]
                shipped = [first_frame(cmd, env, params, node, hits) for _ in range(args.starts)]
                cold = []
                for _ in range(args.starts):
                    removed = remove_caches(package)
                    cold.append(first_frame(cmd, env, params, node, hits))
                rows.append((kind, label, statistics.median(shipped), statistics.median(cold), removed))
                print(f"{kind} {label}: precompiled {shipped}, no caches {cold} (s)", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    print("\nfirst frame after start, median of", args.starts, "starts (s)")
    print(f"{'install':>7} | {'source':>22} | {'precompiled':>11} | {'no caches (before)':>18} | ratio")
    for kind, label, warm, cold, removed in rows:
        print(f"{kind:>7} | {label:>22} | {warm:11.2f} | {cold:18.2f} | {warm / cold:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
