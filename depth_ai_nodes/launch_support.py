"""What every launch file in launch/ shares: the DDS environment of ros/dds.py and the
parameters the multi_host / compressed arguments switch.

Kept here (not in each launch file) so `ros2 launch` and `depth-ai run` give the
nodes the same Fast DDS profile, malloc tuning and split-pipeline settings. Imports
`launch` only when called, so the package imports without a ROS install.
"""
from __future__ import annotations

import os
from typing import Any

from depth_ai_nodes.resources import config_path
from depth_ai_nodes.ros.dds import MALLOC_ENV, PROFILE_NAME, dds_environment

MULTI_HOST_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "RMW_FASTRTPS_USE_QOS_FROM_XML",
                        "ROS_AUTOMATIC_DISCOVERY_RANGE", *MALLOC_ENV)


def dds_settings() -> dict[str, str]:
    """Variable -> value the launch files set unless the user already has one."""
    return {"FASTDDS_DEFAULT_PROFILES_FILE": str(config_path(PROFILE_NAME)),
            "RMW_FASTRTPS_USE_QOS_FROM_XML": "0", **MALLOC_ENV}


def multi_host_settings() -> dict[str, str]:
    """Variable -> value under multi_host:=true: what `depth-ai run --multi-host` gives its
    nodes from this environment (a single-host set-up exported here is replaced, a profile of
    the user's own kept)."""
    env = dds_environment(dict(os.environ), multi_host=True)
    return {name: env[name] for name in MULTI_HOST_VARIABLES}


def dds_environment_actions(multi_host: Any = None) -> list[Any]:
    """SetEnvironmentVariable actions: the shipped large-message profile (default
    transports lose large images) and malloc tuning; a user's own value wins.
    multi_host: a launch condition value (LaunchConfiguration("multi_host")): when true,
    the multi-host profile and discovery on the local network instead."""
    from launch.actions import SetEnvironmentVariable
    from launch.conditions import IfCondition, UnlessCondition
    from launch.substitutions import EnvironmentVariable

    if multi_host is None:
        return [SetEnvironmentVariable(name, EnvironmentVariable(name, default_value=value))
                for name, value in dds_settings().items()]
    return [*(SetEnvironmentVariable(name, EnvironmentVariable(name, default_value=value),
                                     condition=UnlessCondition(multi_host))
              for name, value in dds_settings().items()),
            *(SetEnvironmentVariable(name, value, condition=IfCondition(multi_host))
              for name, value in multi_host_settings().items())]


def switched_values(key: str) -> dict[str, tuple[str, Any, Any]]:
    """Parameter -> (launch argument, value when it is true, the node's default) for node `key`
    (pipeline.SWITCHES: the tables behind the runner's --multi-host and --compressed). Defaults
    come from the node's config file (the documented defaults, tested equal to its table), so
    a launch file does not import the node's module."""
    from depth_ai_nodes.pipeline import BY_KEY, SWITCHES, load_params_file

    spec = BY_KEY[key]
    defaults = load_params_file(spec.params_path(), spec.node_name)
    return {name: (arg, value, defaults[name]) for arg, table in SWITCHES.items()
            for name, value in table.get(key, {}).items()}


def switched_parameters(key: str, **arguments: Any) -> dict[str, Any]:
    """Node parameters of `key` set by launch arguments (multi_host=LaunchConfiguration(...),
    compressed=...): the switched value when the argument is true, the node's default
    otherwise. Goes last in a Node's parameters list."""
    from launch.substitutions import PythonExpression
    from launch_ros.parameter_descriptions import ParameterValue

    def literal(value: Any) -> str:  # bools as 'true' / 'false', as use_sim_time's argument arrives
        return repr(str(value).lower()) if isinstance(value, bool) else repr(value)

    out = {}
    for name, (arg, on, off) in switched_values(key).items():
        expr = PythonExpression([literal(on), " if '", arguments[arg], "'.lower() in ('true', '1') else ", literal(off)])
        out[name] = ParameterValue(expr, value_type=type(off))
    return out
