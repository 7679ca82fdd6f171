"""Session set-up for every test: DDS profile, an isolated ROS domain, cleanup."""
from __future__ import annotations

import os
import random

import pytest

from depth_ai_nodes.ros.dds import clean_stale_fastdds_shm, dds_environment
from harness import DATA_DIR

# Our DDS profile and loopback discovery for this process and every child;
# one domain per test session so parallel sessions never see each other.
os.environ.update(dds_environment())
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 200)))


@pytest.fixture(scope="session")
def ros_context():
    """rclpy initialised once for the pytest process (the subscriber side)."""
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture
def ros_node(ros_context, request):
    """A fresh subscriber node in the pytest process."""
    name = "test_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50]
    node = ros_context.create_node(name)
    yield node
    node.destroy_node()


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data: skipped with a reason when absent, an error in CI."""
    if not DATA_DIR.is_dir():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must have the shared test data at {DATA_DIR}")
        pytest.skip(f"real sensor data not present at {DATA_DIR} (a user checkout has none)")
    return DATA_DIR


def pytest_sessionfinish(session, exitstatus):
    clean_stale_fastdds_shm()
