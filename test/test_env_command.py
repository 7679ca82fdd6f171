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
