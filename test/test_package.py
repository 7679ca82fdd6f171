"""Package-level guarantees: messages, shipped files, the DDS set-up, shm hygiene."""
from __future__ import annotations

import mmap
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from depth_ai_nodes.resources import config_path, share_dir
from depth_ai_nodes.ros import dds


def test_custom_messages_round_trip_through_cdr():
    from rclpy.serialization import deserialize_message, serialize_message
    from depth_ai_nodes.msg import Extrinsics, InferenceStats, RGBIRDepth

    msg = RGBIRDepth()
    msg.header.frame_id = "camera_link"
    msg.depth.height, msg.depth.width, msg.depth.encoding = 2, 3, "16UC1"
    msg.depth.step = 6
    msg.depth.data = np.arange(6, dtype=np.uint16).tobytes()
    msg.depth_to_color.rotation = [1.0, 0, 0, 0, 1, 0, 0, 0, 1]
    msg.depth_to_color.translation = [0.015, 0.0, 0.0]
    back = deserialize_message(serialize_message(msg), RGBIRDepth)
    assert back.header.frame_id == "camera_link"
    assert np.array_equal(np.frombuffer(back.depth.data, np.uint16), np.arange(6))
    assert list(back.depth_to_color.translation) == [0.015, 0.0, 0.0]
    assert Extrinsics().child_frame_id == "" and InferenceStats().reference_points == 0


def test_shared_files_are_found():
    assert (share_dir() / "package.xml").is_file() or (share_dir() / "config").is_dir()
    profile = config_path(dds.PROFILE_NAME)
    root = ET.parse(profile).getroot()
    ns = {"d": "http://www.eprosima.com"}
    kinds = [t.text for t in root.iterfind(".//d:transport_descriptor/d:type", ns)]
    assert "SHM" in kinds, "the large-data profile must use shared memory"
    assert root.find(".//d:useBuiltinTransports", ns).text == "false"


def test_dds_environment_applies_profile_but_respects_user_choice():
    env = dds.dds_environment({})
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(config_path(dds.PROFILE_NAME))
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert env["MALLOC_MMAP_THRESHOLD_"] == "33554432"
    mine = dds.dds_environment({"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/my.xml"})
    assert mine["FASTDDS_DEFAULT_PROFILES_FILE"] == "/etc/my.xml"


PUBLISHER = r"""
import sys, time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
rclpy.init(); node = rclpy.create_node('big_publisher')
pub = node.create_publisher(Image, 'big_depth', qos_profile_sensor_data)
deadline = time.monotonic() + 20
while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(0.3)
msg = Image(height=480, width=640, encoding='16UC1', step=1280)
payload = bytes(range(256)) * (640 * 480 * 2 // 256)
for i in range(60):
    msg.header.frame_id = str(i); msg.data = payload; pub.publish(msg); time.sleep(1 / 30)
time.sleep(0.5); node.destroy_node(); rclpy.shutdown()
"""


@pytest.mark.ros
def test_profile_delivers_large_best_effort_images_between_processes(ros_node):
    """The classic large-message loss: with our profile, best-effort 640x480
    depth at 30 Hz crosses processes (default transports lost ~all of them)."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from harness import spin_until

    got: list[Image] = []
    ros_node.create_subscription(Image, "big_depth", got.append, qos_profile_sensor_data)
    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER], env=dict(os.environ))
    try:
        spin_until(ros_node, lambda: len(got) >= 60 or proc.poll() is not None, 40)
        spin_until(ros_node, lambda: len(got) >= 60, 1.0)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert len(got) >= 57, f"only {len(got)}/60 large best-effort images arrived"
    assert bytes(got[0].data[:256]) == bytes(range(256))


def test_stale_shm_cleanup_spares_live_segments(tmp_path):
    if not dds.SHM_DIR.is_dir():
        pytest.skip("no /dev/shm on this system")
    tag = f"{os.getpid()}_{time.monotonic_ns()}"
    dead = dds.SHM_DIR / f"fastdds_test_dead_{tag}"
    live = dds.SHM_DIR / f"fastdds_test_live_{tag}"
    dead_sem = dds.SHM_DIR / f"sem.fastdds_port_test_dead_{tag}_mutex"
    for path in (dead, live, dead_sem):
        path.write_bytes(b"\0" * 4096)
    holder = open(live, "r+b")
    mapping = mmap.mmap(holder.fileno(), 4096)  # a live process maps it, as Fast DDS does
    try:
        stale = dds.stale_fastdds_shm()
        assert dead in stale and dead_sem in stale and live not in stale
        removed = dds.clean_stale_fastdds_shm()
        assert dead in removed and not dead.exists() and live.exists()
    finally:
        mapping.close()
        holder.close()
        for path in (dead, live, dead_sem):
            path.unlink(missing_ok=True)


def _tracked_tree(dest) -> None:
    """The files a fresh clone has (git ls-files), copied to dest."""
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True)
    if listing.returncode != 0:
        pytest.skip(f"{repo} is not a git checkout: no clone to build")
    files = listing.stdout.decode().split("\0")
    for rel in filter(None, files):
        if (repo / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, dest / rel)


def test_colcon_build_installs_a_working_ros_package(tmp_path):
    """`colcon build` of a clone, as on a ROS install (the ROS wheels stand in for /opt/ros):
    it configures (msg/ and the Python sources are one package), installs the ros2-run
    executables, share/ and the messages, and only depth_ai_nodes is discovered (not vendor/)."""
    import shutil
    from pathlib import Path

    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent)) or shutil.which("colcon")
    if colcon is None:
        pytest.skip("colcon is not installed (scripts/dev setup installs it)")
    if shutil.which("git") is None or shutil.which("cmake") is None:
        pytest.skip("needs git and cmake")
    src = tmp_path / "src" / "depth_ai_nodes"
    _tracked_tree(src)
    prefix = sys.prefix
    env = {**os.environ, "AMENT_PREFIX_PATH": prefix, "CMAKE_PREFIX_PATH": prefix,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    listed = subprocess.run([colcon, "list", "--names-only"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True).stdout.split()
    assert listed == ["depth_ai_nodes"]
    build = subprocess.run(
        [colcon, "build", "--packages-select", "depth_ai_nodes", "--event-handlers", "console_direct-",
         "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, (build.stdout + build.stderr)[-4000:]

    install = tmp_path / "install" / "depth_ai_nodes"
    site = next(install.glob("lib/python3*/site-packages"))
    for exe in ("camera_node", "depth_inference_node", "lidar_node", "lidar_fusion_node"):
        assert os.access(install / "lib" / "depth_ai_nodes" / exe, os.X_OK), exe
    for shared in ("launch/pipeline.launch.py", "config/camera.yaml", "config/fastdds_large_data.xml",
                   "models/depth_completion.onnx", "models/specs/midas_v21_small.yaml", "package.xml"):
        assert (install / "share" / "depth_ai_nodes" / shared).is_file(), shared
    assert (site / "depth_ai_nodes" / "nodes" / "camera_node.py").is_file()
    assert (site / "depth_ai_nodes" / "msg" / "_rgbir_depth.py").is_file()
    # the installed package is ours (not rosidl's empty __init__), its messages and share/ resolve
    run_env = {**env, "AMENT_PREFIX_PATH": f"{install}{os.pathsep}{prefix}",
               "PYTHONPATH": str(site),
               "LD_LIBRARY_PATH": f"{install / 'lib'}{os.pathsep}{os.environ.get('LD_LIBRARY_PATH', '')}"}
    probe = subprocess.run([sys.executable, "-c", (
        "import depth_ai_nodes, depth_ai_nodes.msg as m; from depth_ai_nodes.resources import share_dir;"
        "from depth_ai_nodes.core import registration, projection; from depth_ai_nodes.core.scene import kernels;"
        "from depth_ai_nodes.core.jit import uncompiled;"
        "print(depth_ai_nodes.__file__); print(depth_ai_nodes.__version__); print(share_dir());"
        "print(m.RGBIRDepth().__class__.__name__); print(','.join(uncompiled([registration, projection, kernels])) or 'none')")],
        cwd=tmp_path, env={k: v for k, v in run_env.items() if k != "NUMBA_CACHE_DIR"},
        capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr[-3000:]
    where, version, share, msg_name, cold = probe.stdout.split()
    assert where.startswith(str(site)) and version and msg_name == "RGBIRDepth"
    # the kernels were compiled into the installed package at install time (first start ~1 s)
    assert cold == "none", f"kernels not precompiled at install: {cold}"
    assert list((site / "depth_ai_nodes" / "core" / "__pycache__").glob("registration._register-*.nbc"))
    assert share == str(install / "share" / "depth_ai_nodes")
    # `ros2 run depth_ai_nodes camera_node` runs this file: a config error exits 2 with its message
    bad = subprocess.run([str(install / "lib" / "depth_ai_nodes" / "camera_node"), "--ros-args",
                          "-p", "source:=bogus"], cwd=tmp_path, env=run_env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "source='bogus' is not valid" in bad.stdout + bad.stderr


def test_wheel_ships_numba_caches_that_load_without_compiling(tmp_path):
    """`pip install .` builds a wheel: its build compiles the numba kernels into the package
    (depth_ai_nodes/precompile.py), so a first start does not wait 10-30 s on the JIT. The
    caches must be in the wheel and valid where pip puts the files (new paths, new file times:
    numba >= 0.68 stamps caches with a hash of the source)."""
    import zipfile
    from pathlib import Path

    src = tmp_path / "src"
    _tracked_tree(src)
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "DEPTH_AI_NODES_NO_PRECOMPILE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-q", "-w", str(tmp_path / "dist"), str(src)],
                           env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    wheel = next((tmp_path / "dist").glob("depth_ai_nodes-*.whl"))
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        z.extractall(target)   # what pip does with a wheel: files at new paths, new times
    for kernel in ("core/__pycache__/registration._register-", "core/__pycache__/projection._lookup_kernel-",
                   "core/scene/__pycache__/kernels.render_depth_ir-"):
        assert any(n.startswith(f"depth_ai_nodes/{kernel}") and n.endswith(".nbi") for n in names), kernel
    # every module with cached kernels has some in the wheel: a module precompile.py forgets
    # compiles on its node's first start
    for py in (target / "depth_ai_nodes").rglob("*.py"):
        text = py.read_text()
        if "njit" in text and "cache=True" in text:
            rel = py.relative_to(target).parent.as_posix()
            assert any(n.startswith(f"{rel}/__pycache__/{py.stem}.") and n.endswith(".nbi") for n in names), \
                f"{py.relative_to(target)} has cached numba kernels; depth_ai_nodes/precompile.py compiles none"
    probe = subprocess.run([sys.executable, "-c", (
        "import depth_ai_nodes\n"
        "from depth_ai_nodes.core import registration\n"
        "registration.warm_up()\n"
        "stats = registration._register.stats\n"
        "print(depth_ai_nodes.__file__, sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))")],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(target)}, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    where, hits, misses = probe.stdout.split()
    assert where.startswith(str(target))
    assert int(hits) >= 1 and int(misses) == 0, "the shipped registration kernel was recompiled"
