"""`depth-ai env`: the environment lines every process exchanging images or clouds with our
nodes needs (the shipped Fast DDS profile, malloc tuning), for pip installs, which have no
`ros2 pkg prefix`:

    eval "$(depth-ai env)"          # in each shell that runs rviz2, your own nodes, ...
    depth-ai env --format dotenv    # KEY=value lines, e.g. for a systemd EnvironmentFile
    eval "$(depth-ai env --multi-host)"   # beside `depth-ai run --multi-host` on another machine
"""
from __future__ import annotations

import argparse
import shlex
import sys

from depth_ai_nodes.ros.dds import dds_environment, socket_buffer_shortfall


KEYS = ("FASTDDS_DEFAULT_PROFILES_FILE", "RMW_FASTRTPS_USE_QOS_FROM_XML", "RMW_IMPLEMENTATION",
        "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "ROS_AUTOMATIC_DISCOVERY_RANGE")


def lines(fmt: str = "sh", localhost_only: bool = True, multi_host: bool = False) -> list[str]:
    """What our runner gives its nodes (ros.dds.dds_environment), as shell or dotenv lines."""
    env = dds_environment({}, localhost_only=localhost_only, multi_host=multi_host)
    env = {k: env[k] for k in KEYS if k in env}
    if fmt == "dotenv":
        return [f"{k}={v}" for k, v in env.items()]
    return [f"export {k}={shlex.quote(v)}" for k, v in env.items()]


def run(args: argparse.Namespace) -> int:
    print("\n".join(lines(args.format, not args.any_host, args.multi_host)))
    if args.multi_host:  # on stderr: what a shell evals stays the lines above
        shortfall = socket_buffer_shortfall(dds_environment({}, multi_host=True)["FASTDDS_DEFAULT_PROFILES_FILE"])
        if shortfall:
            print(f"depth-ai env: warning: {shortfall}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("env", help="print the DDS environment lines for other processes",
                              description=__doc__.split("\n")[0])
    p.add_argument("--format", choices=("sh", "dotenv"), default="sh")
    p.add_argument("--any-host", action="store_true",
                   help="leave out ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (discovery beyond this machine)")
    p.add_argument("--multi-host", action="store_true",
                   help="the profile for a pipeline across machines (depth-ai run --multi-host)")
    p.set_defaults(func=run)
