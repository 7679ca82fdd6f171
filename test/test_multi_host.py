"""The pipeline split across two hosts over a lossy link (issue #12), in CI (root).

Two network namespaces joined by a veth pair with their own addresses and private /dev/shm
(test/netns_hosts.py): camera_node and lidar_node on the "robot", depth_inference_node and
lidar_fusion_node on the "server", each side started the documented way
(`depth-ai run --only ... --multi-host`), each on its own half of the cores as two computers
would be. Run once on a clean link and once with 5 % of the
frames dropped in each direction (nftables). Sensors are small (320x240 at 6 fps, a 16x512
LiDAR) so two runners and four nodes fit the 2-core CI machine; bench/bench_multi_host.py
measures the larger ones.
"""
from __future__ import annotations

import os
import sys

import pytest

from netns_hosts import host_cpus, run_split, runner_rates, stalls, unavailable

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


@pytest.fixture(scope="module")
def split_runs(tmp_path_factory):
    why = unavailable()
    if why:
        pytest.skip(why)
    domain = 150 + os.getpid() % 50
    logs = tmp_path_factory.mktemp("multi_host")
    cpus = host_cpus()  # each host its own cores, as two computers
    clean = run_split(sys.executable, SECONDS, 0, domain, PARAMS, logs / "clean", cpus=cpus)
    lossy = run_split(sys.executable, SECONDS, 5, domain, PARAMS, logs / "lossy", cpus=cpus)
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
