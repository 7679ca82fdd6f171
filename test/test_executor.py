"""ros/executor.py: the executor every node spins, its fallback, and callbacks that work under both."""
from __future__ import annotations

import os

import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2

from depth_ai_nodes.ros.executor import EXECUTOR_ENV, WithInfo, executor_kind
from harness import NodeProcess, executable, ros_args, spin_until


def test_the_choice_comes_from_the_environment_and_a_bad_one_is_refused(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert executor_kind() in ("events", "single")  # events wherever rclpy has one
    monkeypatch.setenv(EXECUTOR_ENV, "single")
    assert executor_kind() == "single"
    monkeypatch.setenv(EXECUTOR_ENV, "fast")
    with pytest.raises(ValueError, match="DEPTH_AI_EXECUTOR='fast': use one of events, single"):
        executor_kind()


def test_a_message_info_callback_takes_both_calling_conventions():
    """rclpy's Python executors call fn(msg, info); the EventsExecutor calls fn((msg, info))."""
    import inspect

    seen: list[tuple] = []
    cb = WithInfo(lambda msg, info: seen.append((msg, info)))
    cb("m", {"publication_sequence_number": 1})
    cb(("m", {"publication_sequence_number": 2}))
    assert seen == [("m", {"publication_sequence_number": 1}), ("m", {"publication_sequence_number": 2})]
    with pytest.raises(TypeError):  # what makes rclpy hand it the message info
        inspect.signature(cb).bind(object())


@pytest.mark.ros
def test_a_node_runs_and_stops_cleanly_on_the_python_executor_and_refuses_a_bad_choice(ros_node):
    """DEPTH_AI_EXECUTOR=single: lidar_fusion_node still takes the clouds and fuses them
    (callbacks run), and stops with 0; an unknown executor is a configuration error (exit 2)."""
    got: list = []
    ros_node.create_subscription(PointCloud2, "/fused/points", got.append,
                                 QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    single = {**os.environ, EXECUTOR_ENV: "single"}
    with NodeProcess([executable("lidar_node"), *ros_args({"qos": "reliable"})], env=single) as lidar, \
            NodeProcess([executable("lidar_fusion_node"), *ros_args({"qos": "reliable", "odom_topic": "none"})],
                        env=single) as fusion:
        assert spin_until(ros_node, lambda: len(got) >= 2, 40.0), lidar.output()[-2000:] + fusion.output()[-2000:]
        assert fusion.stop() == 0 and lidar.stop() == 0, fusion.output()[-2000:]
    with NodeProcess([executable("lidar_fusion_node")], env={**os.environ, EXECUTOR_ENV: "fast"}) as bad:
        code = bad.wait(timeout=60)
        out = bad.output()
    assert code == 2 and "configuration error" in out and EXECUTOR_ENV in out, out[-2000:]
