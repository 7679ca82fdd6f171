"""`depth-ai env`: the lines a pip user evals to give other processes our DDS set-up."""
from __future__ import annotations

import subprocess
from pathlib import Path

from harness import executable


def test_depth_ai_env_exports_the_shipped_profile_that_a_shell_can_eval():
    out = subprocess.run(["bash", "-c", f'eval "$({executable("depth-ai")} env)" && '
                          'echo "$FASTDDS_DEFAULT_PROFILES_FILE|$RMW_FASTRTPS_USE_QOS_FROM_XML|'
                          '$ROS_AUTOMATIC_DISCOVERY_RANGE"'], capture_output=True, text=True, timeout=60)
    profile, qos_from_xml, rng = out.stdout.strip().split("|")
    assert Path(profile).is_file() and Path(profile).name == "fastdds_large_data.xml", out
    assert qos_from_xml == "0" and rng == "LOCALHOST"
    dotenv = subprocess.run([executable("depth-ai"), "env", "--format", "dotenv", "--any-host"],
                            capture_output=True, text=True, timeout=60).stdout
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE" not in dotenv and f"FASTDDS_DEFAULT_PROFILES_FILE={profile}" in dotenv


def test_depth_ai_env_multi_host_gives_the_multi_host_profile_and_subnet_discovery():
    out = subprocess.run([executable("depth-ai"), "env", "--multi-host", "--format", "dotenv"],
                         capture_output=True, text=True, timeout=60).stdout
    vals = dict(line.split("=", 1) for line in out.splitlines())
    assert Path(vals["FASTDDS_DEFAULT_PROFILES_FILE"]).name == "fastdds_multi_host.xml"
    assert Path(vals["FASTDDS_DEFAULT_PROFILES_FILE"]).is_file()
    assert vals["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"


def test_multi_host_replaces_an_exported_single_host_set_up_but_keeps_a_profile_of_ones_own():
    from depth_ai_nodes.ros.dds import dds_environment

    single = dds_environment({})  # what `eval "$(depth-ai env)"` exported
    multi = dds_environment(single, multi_host=True)
    assert Path(multi["FASTDDS_DEFAULT_PROFILES_FILE"]).name == "fastdds_multi_host.xml"
    assert multi["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"
    own = dds_environment({"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/my_dds.xml"}, multi_host=True)
    assert own["FASTDDS_DEFAULT_PROFILES_FILE"] == "/etc/my_dds.xml"


def test_socket_buffer_shortfall_names_the_sysctls_to_raise_when_the_kernel_caps_the_profile(tmp_path):
    """The multi-host profile asks for 8 MiB UDP socket buffers; stock Linux caps them at
    212992 bytes, silently. The nodes, the runner and `depth-ai env --multi-host` say so."""
    from depth_ai_nodes.resources import config_path
    from depth_ai_nodes.ros.dds import profile_udp_buffers, socket_buffer_shortfall

    multi, single = config_path("fastdds_multi_host.xml"), config_path("fastdds_large_data.xml")
    assert profile_udp_buffers(multi) == {"receiveBufferSize": 8388608, "sendBufferSize": 8388608}
    stock = {"receiveBufferSize": 212992, "sendBufferSize": 212992}
    line = socket_buffer_shortfall(multi, stock)
    assert line and "net.core.rmem_max = 212992" in line and "net.core.wmem_max = 212992" in line
    assert "sudo sysctl -w net.core.rmem_max=8388608 net.core.wmem_max=8388608" in line
    only_rx = socket_buffer_shortfall(multi, {"receiveBufferSize": 212992, "sendBufferSize": 8388608})
    assert only_rx and "rmem_max" in only_rx and "wmem_max" not in only_rx
    assert socket_buffer_shortfall(multi, {"receiveBufferSize": 8388608, "sendBufferSize": 16 << 20}) is None
    # the kernel grants twice what it sets: a cap of half the request is enough, less is not
    assert socket_buffer_shortfall(multi, {"receiveBufferSize": 4194304, "sendBufferSize": 4194304}) is None
    assert socket_buffer_shortfall(multi, {"receiveBufferSize": 4194303, "sendBufferSize": 4194304})
    assert socket_buffer_shortfall(single, stock) is None  # shared memory + default UDP: nothing asked
    assert socket_buffer_shortfall(tmp_path / "missing.xml", stock) is None
    broken = tmp_path / "broken.xml"
    broken.write_text("<dds><profiles>")
    assert socket_buffer_shortfall(broken, stock) is None
    own = tmp_path / "own.xml"  # a user's profile: namespaced XML, UDPv6, only a receive buffer
    own.write_text('<dds xmlns="http://www.eprosima.com"><profiles><transport_descriptors>'
                   '<transport_descriptor><transport_id>t</transport_id><type>UDPv6</type>'
                   '<receiveBufferSize>1048576</receiveBufferSize></transport_descriptor>'
                   '<transport_descriptor><transport_id>s</transport_id><type>SHM</type>'
                   '<receiveBufferSize>99999999</receiveBufferSize></transport_descriptor>'
                   '</transport_descriptors></profiles></dds>')
    assert profile_udp_buffers(own) == {"receiveBufferSize": 1048576}
    assert "net.core.rmem_max=1048576" in socket_buffer_shortfall(own, stock)
    assert socket_buffer_shortfall(own, {"receiveBufferSize": 524288}) is None


def test_output_qos_takes_the_depth_a_node_sets_and_keeps_the_named_qos_otherwise():
    """`qos_depth` (camera_node, lidar_node): 0 keeps the named QoS's own depth, n > 0 replaces
    it (what --multi-host sets: 30 camera frames, 40 LiDAR scans), below 0 is refused with the fix."""
    import pytest
    from rclpy.qos import ReliabilityPolicy

    from depth_ai_nodes.pipeline import MULTI_HOST_PARAMS
    from depth_ai_nodes.ros.qos import output_qos, qos_from_name

    assert output_qos("sensor_data").depth == qos_from_name("sensor_data").depth == 5
    assert output_qos("reliable", 0).depth == 10
    deep = output_qos("reliable", 40)
    assert deep.depth == 40 and deep.reliability == ReliabilityPolicy.RELIABLE
    assert output_qos("sensor_data", 7).reliability == ReliabilityPolicy.BEST_EFFORT
    with pytest.raises(ValueError, match="qos_depth -1: use 0"):
        output_qos("reliable", -1)
    assert MULTI_HOST_PARAMS["camera"]["qos_depth"] == 30 and MULTI_HOST_PARAMS["lidar"]["qos_depth"] == 40


def test_input_qos_depth_is_checked_and_multi_host_gives_the_fusion_reader_ten_scans():
    """`input_qos_depth` (inference, fusion): 0 (the node's own depth) and n >= 1 pass, below 0 is
    refused with the fix. --multi-host gives the fusion node's readers 10 messages: keeping its
    default 5, raw 128x2048 scans across a link with 5 % loss stopped reaching it (0 fused clouds,
    11 stalls), keeping 10 they kept flowing (0.62-0.81 of the clean rate); deeper, a fusion node
    on a full core works through seconds of backlog (bench/RESULTS.md). The inference node's
    images are small enough for its default."""
    import pytest

    from depth_ai_nodes.pipeline import MULTI_HOST_PARAMS
    from depth_ai_nodes.ros.qos import history_depth

    assert history_depth(0) == 0 and history_depth(40, "input_qos_depth") == 40
    with pytest.raises(ValueError, match="input_qos_depth -2: use 0"):
        history_depth(-2, "input_qos_depth")
    for key in ("inference", "fusion"):
        assert MULTI_HOST_PARAMS[key]["input_qos"] == "reliable"
    assert MULTI_HOST_PARAMS["fusion"]["input_qos_depth"] == 10
    assert "input_qos_depth" not in MULTI_HOST_PARAMS["inference"]


SUBSCRIPTION_DEPTHS = """
import sys, rclpy
rclpy.init(args=["--ros-args", "-p", "input_qos:=reliable", "-p", "input_qos_depth:=" + sys.argv[1]])
from depth_ai_nodes.nodes.lidar_fusion_node import LidarFusionNode
from depth_ai_nodes.nodes.depth_inference_node import DepthInferenceNode
for cls in (LidarFusionNode, DepthInferenceNode):
    node = cls()
    print(cls.__name__, {s.topic_name: s.qos_profile.depth for s in node.subscriptions})
    node.destroy_node()
rclpy.shutdown()
"""


def test_input_qos_depth_sets_the_depth_the_nodes_subscribe_with():
    """The nodes built in a process of their own (no DDS peer needed): 0 keeps fusion's 5 (20 for
    odometry) and inference's 10; 40 applies to every sensor subscription; 3 leaves odometry at 20.
    The calibration stays latched with depth 1."""
    import ast
    import subprocess
    import sys

    def depths(value: int) -> dict[str, dict[str, int]]:
        done = subprocess.run([sys.executable, "-c", SUBSCRIPTION_DEPTHS, str(value)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        rows = [line.split(" ", 1) for line in done.stdout.splitlines() if line.endswith("}")]
        return {name: ast.literal_eval(text) for name, text in rows}

    default, deep, shallow = depths(0), depths(40), depths(3)
    assert default["LidarFusionNode"]["/lidar/points"] == 5 and default["LidarFusionNode"]["/lidar/odom"] == 20
    assert set(default["DepthInferenceNode"].values()) == {10}
    assert set(deep["DepthInferenceNode"].values()) == {40}
    fusion = deep["LidarFusionNode"]
    assert fusion.pop("/lidar/extrinsics/lidar_to_camera") == 1 and set(fusion.values()) == {40}
    assert shallow["LidarFusionNode"]["/lidar/points"] == 3 and shallow["LidarFusionNode"]["/lidar/odom"] == 20
