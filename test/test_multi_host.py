"""The pipeline split across two hosts over a lossy link (issue #12), in CI (root).

Two network namespaces joined by a veth pair with their own addresses and private /dev/shm
(test/netns_hosts.py): camera_node and lidar_node on the "robot", depth_inference_node and
lidar_fusion_node on the "server", each side started the documented way
(`depth-ai run --only ... --multi-host`). Run once on a clean link and once with 5 % of the
frames dropped in each direction (nftables). Sensors are small (320x240 at 6 fps, a 16x512
LiDAR) so two runners and four nodes fit the 2-core CI machine; bench/bench_multi_host.py
measures the larger ones.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from netns_hosts import host_cpus, probe_gaps, run_split, runner_rates, stalls, unavailable

PARAMS = """camera:
  ros__parameters:
    rgb_camera.color_profile: "320,240,6"
    depth_module.depth_profile: "320,240,6"
    depth_module.infra_profile: "320,240,6"
    enable_ground_truth: false
    synthetic.prerender_frames: 20
lidar:
  ros__parameters:
    beams: 16
    columns: 512
depth_inference:
  ros__parameters:
    intra_op_threads: 1
"""
OUTPUTS = ["/depth_inference/depth", "/fused/points"]
SECONDS = 25.0
PROBE_SECONDS = 20.0


@pytest.fixture(scope="module")
def split_runs(tmp_path_factory):
    why = unavailable()
    if why:
        pytest.skip(why)
    domain = 150 + os.getpid() % 50
    logs = tmp_path_factory.mktemp("multi_host")
    # both hosts on every core: pinned to one core each, the server's core is saturated by
    # inference and fusion's output swung 0.79-1.0 between runs (a flaky test, not the link)
    clean = run_split(sys.executable, SECONDS, 0, domain, PARAMS, logs / "clean")
    lossy = run_split(sys.executable, SECONDS, 5, domain, PARAMS, logs / "lossy")
    return clean, lossy


def test_split_pipeline_runs_across_two_hosts(split_runs):
    clean, _ = split_runs
    rates = runner_rates(clean)
    for topic in OUTPUTS + ["/lidar_depth"]:
        assert rates.get(topic, 0.0) > 0.5, f"{topic} did not cross the hosts:\n{clean[-4000:]}"


def test_five_percent_loss_keeps_eighty_percent_of_every_output_and_stops_none(split_runs):
    clean, lossy = split_runs
    a, b = runner_rates(clean), runner_rates(lossy)
    for topic in OUTPUTS:
        assert b.get(topic, 0.0) >= 0.8 * a[topic], (
            f"{topic}: {b.get(topic, 0.0):.2f} Hz with 5 % loss vs {a[topic]:.2f} Hz clean\n{lossy[-4000:]}")
    stalled = stalls(lossy, OUTPUTS + ["/lidar_depth"])
    assert not any(stalled.values()), f"streams stopped with loss: {stalled}\n{lossy[-4000:]}"


def test_compressed_streams_cross_a_lossy_link_at_full_rate_without_bursts(tmp_path):
    """`--compressed` across the link with 5 % loss: a subscriber on the server
    (test/stream_probe.py) gets the JPEG colour and IR, the RVL depth and the zstd LiDAR scans at >= 80 %
    of their rates, none silent for a second (Fast DDS's default 3 s heartbeat repaired small
    messages only every 1-1.7 s; config/fastdds_multi_host.xml sets 100 ms)."""
    why = unavailable()
    if why:
        pytest.skip(why)
    domain = 150 + (os.getpid() + 7) % 50
    probe = [sys.executable, str(Path(__file__).with_name("stream_probe.py")), str(PROBE_SECONDS),
             "--domain-id", str(domain), "--compressed"]
    log = run_split(sys.executable, PROBE_SECONDS, 5, domain, PARAMS, tmp_path, cpus=host_cpus(),
                    extra_args=("--compressed",), server_command=probe)
    rates = runner_rates(log)
    gaps = probe_gaps(log)
    expected = {"/camera/color/image_raw/compressed": 6.0, "/camera/infra1/image_rect_raw/compressed": 6.0,
                "/camera/aligned_depth_to_color/image_raw/compressedDepth": 6.0, "/lidar/points/zstd": 10.0}
    for topic, hz in expected.items():
        assert rates.get(topic, 0.0) >= 0.8 * hz, f"{topic}: {rates.get(topic, 0.0):.2f} Hz\n{log[-3000:]}"
        assert gaps[topic] < 1.0, f"{topic}: silent for {gaps[topic]:.2f} s with 5 % loss\n{log[-3000:]}"
