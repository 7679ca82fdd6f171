"""`depth-ai env`: the environment lines every process exchanging images or clouds with our
nodes needs (the shipped Fast DDS profile, malloc tuning), for pip installs, which have no
`ros2 pkg prefix`:

    eval "$(depth-ai env)"          # in each shell that runs rviz2, your own nodes, ...
    depth-ai env --format dotenv    # KEY=value lines, e.g. for a systemd EnvironmentFile
"""
from __future__ import annotations

import argparse
import shlex

from depth_ai_nodes.resources import config_path
from depth_ai_nodes.ros.dds import MALLOC_ENV, PROFILE_NAME


def lines(fmt: str = "sh", localhost_only: bool = True) -> list[str]:
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": str(config_path(PROFILE_NAME)), "RMW_FASTRTPS_USE_QOS_FROM_XML": "0",
           "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp", **MALLOC_ENV}
    if localhost_only:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if fmt == "dotenv":
        return [f"{k}={v}" for k, v in env.items()]
    return [f"export {k}={shlex.quote(v)}" for k, v in env.items()]


def run(args: argparse.Namespace) -> int:
    print("\n".join(lines(args.format, not args.any_host)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("env", help="print the DDS environment lines for other processes",
                              description=__doc__.split("\n")[0])
    p.add_argument("--format", choices=("sh", "dotenv"), default="sh")
    p.add_argument("--any-host", action="store_true",
                   help="leave out ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (discovery beyond this machine)")
    p.set_defaults(func=run)
