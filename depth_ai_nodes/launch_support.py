"""What every launch file in launch/ shares: the DDS environment of ros/dds.py.

Kept here (not in each launch file) so `ros2 launch` and `depth-ai run` give the
nodes the same Fast DDS profile and malloc tuning. Imports `launch` only when
called, so the package imports without a ROS install.
"""
from __future__ import annotations

from typing import Any

from depth_ai_nodes.resources import config_path
from depth_ai_nodes.ros.dds import MALLOC_ENV, PROFILE_NAME


def dds_settings() -> dict[str, str]:
    """Variable -> value the launch files set unless the user already has one."""
    return {"FASTDDS_DEFAULT_PROFILES_FILE": str(config_path(PROFILE_NAME)),
            "RMW_FASTRTPS_USE_QOS_FROM_XML": "0", **MALLOC_ENV}


def dds_environment_actions() -> list[Any]:
    """SetEnvironmentVariable actions: the shipped large-message profile (default
    transports lose large images) and malloc tuning; a user's own value wins."""
    from launch.actions import SetEnvironmentVariable
    from launch.substitutions import EnvironmentVariable

    return [SetEnvironmentVariable(name, EnvironmentVariable(name, default_value=value))
            for name, value in dds_settings().items()]
