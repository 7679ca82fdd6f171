"""Declarative node parameters: one table per node, documented and checkable.

Each node module defines `PARAMETERS: list[Param]`. The same table declares
the parameters (with descriptions, so `ros2 param describe` shows unit and
default), generates docs, and lets tests check config/*.yaml and launch files
against what the node really declares, without starting it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from depth_ai_nodes.ros.node_main import ConfigError


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    unit: str = ""
    choices: tuple = ()
    read_only: bool = True  # most settings need a restart; says so to `ros2 param`

    def doc(self) -> str:
        unit = f" [{self.unit}]" if self.unit else ""
        choices = f" One of: {', '.join(map(str, self.choices))}." if self.choices else ""
        return f"{self.description}{unit}{choices} Default: {self.default!r}."


# Values that switch a topic parameter off from the command line: `-p depth_topic:=` is a
# ROS argument error and `-p depth_topic:=''` needs shell quoting, so `none` (or `off`, `-`) works too.
TOPIC_OFF = ("none", "off", "-")


def declare(node: Node, params: Iterable[Param]) -> dict[str, Any]:
    """Declare every Param on `node`; return {name: value}, choices validated. A `*_topic`
    parameter set to none / off / - is switched off (the empty string)."""
    values: dict[str, Any] = {}
    for p in params:
        descriptor = ParameterDescriptor(description=p.doc(), read_only=p.read_only)
        value = node.declare_parameter(p.name, p.default, descriptor).value
        if p.name.endswith("_topic") and isinstance(value, str) and value.strip().lower() in TOPIC_OFF:
            value = ""
        if p.choices and value not in p.choices:
            raise ConfigError(f"parameter {p.name}={value!r} is not valid; "
                              f"use one of: {', '.join(map(str, p.choices))}")
        values[p.name] = value
    return values


def as_markdown(params: Iterable[Param]) -> str:
    """A parameter table for docs: name, default, unit, description."""
    rows = ["| parameter | default | unit | description |", "|---|---|---|---|"]
    for p in params:
        choices = f" One of: {', '.join(map(str, p.choices))}." if p.choices else ""
        rows.append(f"| `{p.name}` | `{p.default!r}` | {p.unit} | {p.description}{choices} |")
    return "\n".join(rows)


def as_params_yaml(params: Iterable[Param], executable: str, module: str, file_name: str) -> str:
    """A documented ROS params file of every Param at its default (the config/*.yaml
    layout: `/**:` so it applies whatever the node's name or namespace)."""
    import json
    import textwrap

    lines = [f"# {executable} parameters with their defaults (ROS 2 params-file format).",
             "# `/**:` applies them to the node whatever its name or namespace:",
             f"#   {executable} --ros-args --params-file config/{file_name}",
             f"# Generated from {module.replace('.', '/')}.py PARAMETERS; keep in sync.",
             "/**:", "  ros__parameters:"]
    for p in params:
        unit = f" [{p.unit}]" if p.unit else ""
        choices = f" One of: {', '.join(map(str, p.choices))}." if p.choices else ""
        for text in textwrap.wrap(f"{p.description}{unit}{choices}", 92):
            lines.append(f"    # {text}")
        lines.append(f"    {p.name}: {_yaml_value(p.default, json)}")
    return "\n".join(lines) + "\n"


def _yaml_value(value: Any, json: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v, json) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)
