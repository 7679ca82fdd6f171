"""`depth-ai run` end to end: the runner is a real process that starts the real
nodes over real DDS on the built-in scene.

One run (the pipeline takes a while to come up on 2 cores, so one run checks
everything): every output topic of every installed node reaches its expected
rate in the runner's own status lines; a node killed with SIGKILL is restarted
and publishes again (seen by a subscriber here); SIGINT stops everything with
exit 0, leaves no process and no Fast DDS /dev/shm file of ours behind, and a
preview PNG is written. The topics of config/depth_ai.rviz are all seen live.
"""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import yaml
from rclpy.qos import QoSProfile, ReliabilityPolicy
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image

from depth_ai_nodes.pipeline import NODES, Choices, expected_rate, plan
from depth_ai_nodes.ros.dds import SHM_DIR, stale_fastdds_shm
from harness import NodeProcess, collect, executable

pytestmark = pytest.mark.ros

W, H, FPS = 320, 240, 15
STATUS = re.compile(r"status (\S+)\s+([\d.]+) /\s+(\d+) Hz\s+\S+\s+\d+\s+(\d+)\s+(\w+)")
BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)


def wait_output(proc: NodeProcess, predicate, timeout: float, what: str) -> str:
    """Poll the runner's output until predicate(text) or timeout (it prints every 2 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = proc.output()
        if predicate(text):
            return text
        assert proc.alive(), f"runner exited early:\n{text[-4000:]}"
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s:\n{proc.output()[-5000:]}")


def latest_status(text: str) -> dict[str, tuple[float, float, int, str]]:
    """topic -> (rate, expected, count, state) from the latest status line of each."""
    rows = {}
    for m in STATUS.finditer(text):
        rows[m.group(1)] = (float(m.group(2)), float(m.group(3)), int(m.group(4)), m.group(5))
    return rows


def shm_files_of(pids: list[int]) -> set[Path]:
    used = set()
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/maps").read_text(errors="replace").splitlines():
                if "/dev/shm/fastdds" in line:
                    used.add(Path(line[line.index("/dev/shm/"):].split(" (deleted)")[0]))
        except OSError:
            pass
    return used


def test_runner_brings_up_pipeline_restarts_and_stops_clean(tmp_path, ros_node):
    override = tmp_path / "small.yaml"
    profile = f"{W},{H},{FPS}"
    override.write_text(yaml.safe_dump({"camera": {"ros__parameters": {
        "rgb_camera.color_profile": profile, "depth_module.depth_profile": profile,
        "depth_module.infra_profile": profile}}}))
    planned = [p for p in plan(Choices()) if p.spec.available()]
    for p in planned:
        p.extra_params_files = [override]
    expected = {o.topic: (expected_rate(o, p.effective_params()), o.min_ratio)
                for p in planned for o in p.spec.outputs
                if o.monitor and o.enabled(p.effective_params())}
    assert "/camera/color/image_raw" in expected and expected["/camera/color/image_raw"][0] == FPS

    preview = tmp_path / "preview.png"
    with NodeProcess([executable("depth-ai"), "run", "--duration", "170", "--status-period",
                      "2", "--params-file", str(override), "--preview", str(preview),
                      "--log-dir", str(tmp_path / "logs"),
                      "--domain-id", os.environ["ROS_DOMAIN_ID"]]) as runner:
        # 1. every expected topic flows at its rate (several status lines in a row)
        def all_flowing(text: str) -> bool:
            rows = latest_status(text)
            return all(t in rows and rows[t][2] >= 10 for t in expected)

        text = wait_output(runner, all_flowing, 120.0, "not every topic published")
        mark = len(text)
        text = wait_output(runner, lambda t: len(STATUS.findall(t[mark:])) >= 2 * len(expected),
                           20.0, "no further status lines")
        rows = latest_status(text)
        for topic, (hz, ratio) in expected.items():
            rate = rows[topic][0]
            assert rate >= ratio * hz, f"{topic}: {rate} Hz, expected {hz} Hz (>= {ratio:.0%})"
        pids = {name: int(pid) for name, pid in re.findall(r"started (\S+) \(pid (\d+)\)", text)}
        assert set(pids) == {p.spec.executable for p in planned}, text
        ours = shm_files_of([runner.proc.pid, *pids.values()])
        assert ours, "the runner's processes map no Fast DDS shm: is the profile applied?"

        # 2. a node that dies is restarted and publishes again. A SIGKILLed process
        # cannot remove its own shm files; the runner removes them once no live
        # process maps them (here the pytest subscriber may still hold them).
        killed_files = shm_files_of([pids["camera_node"]])
        os.kill(pids["camera_node"], signal.SIGKILL)
        text = wait_output(runner, lambda t: "restarted camera_node (pid" in t, 30.0,
                           "camera_node was not restarted")
        new_pid = int(re.search(r"restarted camera_node \(pid (\d+)", text).group(1))
        assert new_pid != pids["camera_node"]
        assert "camera_node exited with code -9" in text
        got = collect(ros_node, {"/camera/color/image_raw": Image}, count=5, timeout=90.0,
                      qos=BEST_EFFORT)
        assert len(got["/camera/color/image_raw"]) >= 5, runner.output()[-3000:]
        ours |= shm_files_of([runner.proc.pid, new_pid, *pids.values()])

        # 3. SIGINT: everything stops cleanly
        assert runner.stop(timeout=60.0) == 0, runner.output()[-4000:]
        text = runner.output()

    for name in pids:
        assert f"{name} stopped (exit 0)" in text, text[-3000:]
    for pid in [*pids.values(), new_pid]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    left = ({p for p in ours if p.exists()} & set(stale_fastdds_shm())) - killed_files
    assert not left, f"stale Fast DDS files left in {SHM_DIR}: {sorted(left)}"
    assert preview.is_file() and preview.stat().st_size > 1000, text[-2000:]

    # every topic rviz shows, for the nodes that exist, was seen live
    seen = set(re.findall(r"summary (\S+): [1-9]\d* messages", text))
    rviz = yaml.safe_load(Path(__file__).resolve().parent.parent.joinpath(
        "config", "depth_ai.rviz").read_text())
    live_nodes = {p.spec.key for p in planned}
    for d in rviz["Visualization Manager"]["Displays"]:
        topic = d.get("Topic", {}).get("Value") if isinstance(d.get("Topic"), dict) else None
        owner = next((n.key for n in NODES for o in n.outputs if o.topic == topic), None)
        if topic and d.get("Enabled") and owner in live_nodes:
            assert topic in seen, f"rviz shows {topic}, never published in the run"


def test_runner_stops_with_the_nodes_configuration_error(tmp_path):
    missing = tmp_path / "no_such_recording.bag"
    with NodeProcess([executable("depth-ai"), "run", "--source", "file", "--file", str(missing),
                      "--lidar", "none", "--no-inference", "--duration", "60",
                      "--no-preview", "--log-dir", str(tmp_path / "logs"),
                      "--domain-id", os.environ["ROS_DOMAIN_ID"]]) as runner:
        code = runner.wait(60)
        text = runner.output()
    assert code == 2, text
    assert "camera_node stopped with a configuration error" in text, text
    assert "configuration error" in text and str(missing) in text, text
    assert "restarting in" not in text, text


def test_runner_only_starts_the_named_nodes_and_refuses_unknown_ones(tmp_path):
    """--only splits the pipeline across machines: here only lidar_node (camera elsewhere)."""
    with NodeProcess([executable("depth-ai"), "run", "--only", "lidar", "--duration", "4", "--no-preview",
                      "--log-dir", str(tmp_path)]) as runner:
        assert runner.wait(timeout=90) == 0, runner.output()[-3000:]
        out = runner.output()
    assert "lidar_node stopped (exit 0)" in out and "camera_node" not in out, out[-3000:]
    with NodeProcess([executable("depth-ai"), "run", "--only", "camera,radar", "--no-preview"]) as bad:
        assert bad.wait(timeout=60) == 2 and "--only" in bad.output()


def test_runner_no_monitor_supervises_the_nodes_without_subscribing_to_them(tmp_path, ros_node):
    """--no-monitor (the robot of a split pipeline): the node runs and its CPU is reported, but
    the runner subscribes to none of its outputs; with --foxglove it is a configuration error."""
    with NodeProcess([executable("depth-ai"), "run", "--only", "lidar", "--no-monitor", "--duration", "10",
                      "--no-preview", "--log-dir", str(tmp_path), "--domain-id", os.environ["ROS_DOMAIN_ID"]]) as runner:
        deadline = time.monotonic() + 60
        while not ros_node.get_publishers_info_by_topic("/lidar/points"):
            assert time.monotonic() < deadline and runner.alive(), runner.output()[-3000:]
            time.sleep(0.2)
        time.sleep(2.0)  # a monitoring runner subscribes within 0.5 s of seeing the publisher
        subscribers = [s.node_name for s in ros_node.get_subscriptions_info_by_topic("/lidar/points")]
        assert runner.wait(timeout=60) == 0, runner.output()[-3000:]
        out = runner.output()
    assert subscribers == [], subscribers
    assert "--no-monitor" in out and "summary CPU lidar_node" in out, out[-3000:]
    assert "summary /lidar/points" not in out, out[-3000:]
    with NodeProcess([executable("depth-ai"), "run", "--no-monitor", "--foxglove", "--no-preview"]) as bad:
        assert bad.wait(timeout=60) == 2 and "--no-monitor" in bad.output()


def test_runner_multi_host_selects_the_multi_host_profile_and_reliable_sensor_qos(tmp_path):
    """--multi-host: config/fastdds_multi_host.xml, discovery beyond this machine, reliable QoS."""
    with NodeProcess([executable("depth-ai"), "run", "--only", "lidar", "--multi-host", "--duration", "4",
                      "--no-preview", "--log-dir", str(tmp_path)]) as runner:
        assert runner.wait(timeout=90) == 0, runner.output()[-3000:]
        out = runner.output()
    assert "fastdds_multi_host.xml" in out, out[-2000:]
    log = (tmp_path / "lidar_node.log").read_text()
    assert "qos:=reliable" in log and "qos_depth:=40" in log and "lidar_node stopped (exit 0)" in out, log[:2000]
    # the kernel's socket-buffer caps against the profile's 8 MiB: said by the runner and the node
    # exactly when this machine's caps are lower (stock Linux: 212992 bytes)
    from depth_ai_nodes.resources import config_path
    from depth_ai_nodes.ros.dds import socket_buffer_shortfall

    short = socket_buffer_shortfall(config_path("fastdds_multi_host.xml")) is not None
    assert ("warning: the kernel caps UDP socket buffers" in out) == short, out[-2000:]
    assert ("the kernel caps UDP socket buffers" in log) == short, log[:2000]


def test_runner_and_nodes_warn_when_the_kernel_caps_the_profiles_socket_buffers(tmp_path):
    """A profile asking for UDP buffers above what the kernel grants (twice its cap): the runner
    and each node say so once, with the sysctl to raise. A user's own profile is kept under
    --multi-host, so a copy of the shipped one asking for more than this machine allows shows it."""
    from depth_ai_nodes.resources import config_path
    from depth_ai_nodes.ros.dds import KERNEL_BUFFER_LIMITS

    cap = max(int(p.read_text()) for p in KERNEL_BUFFER_LIMITS.values())
    if 2 * cap + 2 > 2**32 - 1:
        pytest.skip(f"this kernel's socket-buffer cap ({cap} bytes) leaves no larger request a profile can make")
    profile = tmp_path / "my_dds.xml"
    profile.write_text(config_path("fastdds_multi_host.xml").read_text()
                       .replace("<receiveBufferSize>8388608<", f"<receiveBufferSize>{2 * cap + 2}<")
                       .replace("<sendBufferSize>8388608<", f"<sendBufferSize>{2 * cap + 2}<"))
    env = {**os.environ, "FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}
    with NodeProcess([executable("depth-ai"), "run", "--only", "lidar", "--multi-host", "--duration", "3",
                      "--no-preview", "--no-monitor", "--log-dir", str(tmp_path)], env=env) as runner:
        assert runner.wait(timeout=90) == 0, runner.output()[-3000:]
        out = runner.output()
    fix = f"sudo sysctl -w net.core.rmem_max={2 * cap + 2} net.core.wmem_max={2 * cap + 2}"
    assert out.count("warning: the kernel caps UDP socket buffers below what my_dds.xml asks for") == 1, out[-2000:]
    assert fix in out
    log = (tmp_path / "lidar_node.log").read_text()
    assert log.count("the kernel caps UDP socket buffers") == 1 and fix in log, log[:2000]


def _fused_with_camera(diags: list) -> int:
    """The fusion node's "fused with camera" count in the newest /diagnostics that has it."""
    for _, arr in reversed(diags):
        for status in arr.status:
            values = {kv.key: kv.value for kv in status.values}
            if "fused with camera" in values:
                return int(values["fused with camera"])
    return 0


def test_runner_compressed_carries_colour_ir_and_depth_compressed_to_inference_and_fusion(tmp_path, ros_node):
    """--compressed: the camera publishes <image>/compressed and <depth>/compressedDepth, the
    inference and fusion nodes subscribe to those only. Inference depth needs colour and depth,
    a cloud fused with camera values needs IR: both flow only through the compressed streams."""
    params = tmp_path / "small.yaml"
    params.write_text(yaml.safe_dump({
        "camera": {"ros__parameters": {f"{k}": f"{W},{H},6" for k in (
            "rgb_camera.color_profile", "depth_module.depth_profile", "depth_module.infra_profile")}
            | {"enable_ground_truth": False}},
        "lidar": {"ros__parameters": {"beams": 16, "columns": 512}},
        "depth_inference": {"ros__parameters": {"intra_op_threads": 1}}}))
    with NodeProcess([executable("depth-ai"), "run", "--compressed", "--duration", "40", "--no-preview",
                      "--status-period", "2", "--params-file", str(params), "--log-dir", str(tmp_path / "logs"),
                      "--domain-id", os.environ["ROS_DOMAIN_ID"]]) as runner:
        started = time.monotonic()
        got = collect(ros_node, {"/depth_inference/depth": Image, "/diagnostics": DiagnosticArray}, count=0,
                      timeout=60.0, qos=BEST_EFFORT, stop_when=lambda g: len(g["/depth_inference/depth"]) >= 3
                      and _fused_with_camera(g["/diagnostics"]) >= 3)
        time.sleep(max(0.0, started + 10.0 - time.monotonic()))  # past the nodes' CPU warm-up mark
        assert runner.stop(timeout=30) == 0, runner.output()[-3000:]
        text = runner.output()
    assert len(got["/depth_inference/depth"]) >= 3, text[-3000:]
    assert _fused_with_camera(got["/diagnostics"]) >= 3, text[-3000:]
    logs = {name: (tmp_path / "logs" / f"{name}.log").read_text() for name in (
        "camera_node", "depth_inference_node", "lidar_fusion_node")}
    assert "compressed_depth.format:=rvl" in logs["camera_node"], logs["camera_node"][:2000]
    assert ("color_transport:=compressed" in logs["depth_inference_node"]
            and "depth_transport:=compressedDepth" in logs["depth_inference_node"]), logs["depth_inference_node"][:2000]
    assert "ir_transport:=compressed" in logs["lidar_fusion_node"], logs["lidar_fusion_node"][:2000]
    # the summary gives each node's CPU after its warm-up 
    cpu = dict(re.findall(r"summary CPU (\w+): ([\d.]+) % of one core", text))
    assert set(cpu) == {"camera_node", "depth_inference_node", "lidar_node", "lidar_fusion_node"}, text[-3000:]
    assert all(0.0 < float(v) < 100.0 * os.cpu_count() for v in cpu.values()), cpu


def test_a_params_files_sources_stand_unless_the_command_line_names_others(tmp_path):
    """--source / --lidar left out: a --params-file's camera and LiDAR source are started (the
    runner's default used to override them with the built-in scene); named: they win."""
    import argparse

    from depth_ai_nodes.tools.runner import choices_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    mine = tmp_path / "mine.yaml"
    mine.write_text("lidar:\n  ros__parameters:\n    source: files\n    points_path: /data/scans\n"
                    "camera:\n  ros__parameters:\n    source: images\n")
    from_file = choices_from_args(parser.parse_args(["run", "--params-file", str(mine)]))
    assert (from_file.source, from_file.lidar) == ("images", "files")
    started = {p.spec.key: p.effective_params() for p in plan(from_file)}
    assert started["lidar"]["source"] == "files" and started["camera"]["source"] == "images"
    named = choices_from_args(parser.parse_args(["run", "--params-file", str(mine), "--lidar", "none",
                                                 "--source", "synthetic"]))
    assert (named.source, named.lidar) == ("synthetic", "none")
    plain = choices_from_args(parser.parse_args(["run"]))
    assert (plain.source, plain.lidar) == ("synthetic", "synthetic")


def test_a_params_file_that_is_not_node_sections_is_a_configuration_error(tmp_path):
    """Exit 2 naming the file and the layout, before any node starts (was a traceback)."""
    import argparse

    from depth_ai_nodes.tools.runner import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    cases = {"not_yaml.yaml": "camera: [unclosed\n", "a_list.yaml": "- a\n- b\n",
             "flat.yaml": "camera: 3\n", "bad_params.yaml": "camera:\n  ros__parameters: [1, 2]\n"}
    for name, text in cases.items():
        f = tmp_path / name
        f.write_text(text)
        args = parser.parse_args(["run", "--params-file", str(f), "--duration", "1", "--no-preview"])
        assert args.func(args) == 2, name
    good = tmp_path / "good.yaml"
    good.write_text("/**:\n  ros__parameters:\n    use_sim_time: false\ncamera:\n")
    from depth_ai_nodes.pipeline import load_params_file

    assert load_params_file(good, "camera") == {"use_sim_time": False}


def test_an_unknown_executor_is_a_configuration_error_before_any_node_starts(monkeypatch, capsys):
    import argparse

    from depth_ai_nodes.tools.runner import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    monkeypatch.setenv("DEPTH_AI_EXECUTOR", "multi")
    args = parser.parse_args(["run", "--duration", "1", "--no-preview"])
    assert args.func(args) == 2
    assert "DEPTH_AI_EXECUTOR='multi': use one of events, single" in capsys.readouterr().err
