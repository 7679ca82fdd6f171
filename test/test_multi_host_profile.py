"""The multi-host DDS profile on ONE host: large messages between two processes on this machine.

Between hosts the profile sends 1400-byte UDP messages, and Fast DDS fragments every sample to
the smallest message any of a participant's transports takes, shared memory included: a 6.3 MB
LiDAR scan reaches a reader on the same host as ~4,700 shared-memory fragments. With the port
queue at 256 they overflowed it: in the pipeline on one host, 0 of ~450 scans reached a probe and
the robot's own fusion starved; here 46-88 of 120 arrived, ~400 ms late. Runs without root: no
network namespaces, just two processes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from depth_ai_nodes.ros.dds import dds_environment

LINK = str(Path(__file__).resolve().parent / "sample_link.py")


def test_a_large_reliable_message_crosses_shared_memory_at_full_rate_with_the_multi_host_profile():
    env = {**dds_environment(multi_host=True), "ROS_DOMAIN_ID": str(160 + os.getpid() % 40),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    seconds, rate = 6.0, 10.0
    # one reader of two 6.3 MB streams at 10 Hz (as the fusion node's process receives scans and
    # more): the writers keep 40 as --multi-host sets the LiDAR's, the reader 10
    sub = subprocess.Popen([sys.executable, LINK, "--role", "sub", "--seconds", str(seconds + 4), "--depth", "10"],
                           env=env, stdout=subprocess.PIPE, text=True)
    pubs = [subprocess.Popen([sys.executable, LINK, "--role", "pub", "--size", str(6_300_000), "--rate", str(rate),
                              "--seconds", str(seconds), "--depth", "40"], env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    published = sum(int(p.communicate(timeout=120)[0].split()[-1]) for p in pubs)
    received = sub.communicate(timeout=120)[0].split()
    values = dict(zip(received[::2], received[1::2]))
    assert published >= 0.8 * 2 * seconds * rate, published
    got = int(values.get("received", 0))
    # measured: 116-117 of 120, 25-28 ms after their stamp; with the old queue 46-88, ~400 ms
    assert got >= 0.85 * published, f"{got} of {published} scans arrived: {received}"
    assert float(values["latency"]) <= 250, f"median latency {values['latency']} ms: {received}"
