"""`depth-ai`: the command line. Each subcommand lives in its own module of
depth_ai_nodes.tools, which defines `register(subparsers)` adding one parser
whose `func(args) -> int` runs it. Modules are imported only when needed."""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module in depth_ai_nodes.tools
SUBCOMMANDS = {
    "run": "runner",        # the pipeline runner (no ROS install needed)
    "record": "bag",        # topics -> rosbag2 (mcap / sqlite3)
    "play": "bag",          # rosbag2 -> topics
    "preview": "preview",   # PNGs from live topics or a bag
    "infer": "infer",       # run a depth model on image files
    "eval": "evaluate",     # accuracy tables and per-sample PNGs
    "env": "env",           # DDS environment lines for other processes (rviz2, your nodes)
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depth-ai", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered: set[str] = set()
    for name, module in SUBCOMMANDS.items():
        if (only and name != only) or module in registered:
            continue
        try:
            mod = importlib.import_module(f"depth_ai_nodes.tools.{module}")
        except ImportError as err:
            if only:
                raise SystemExit(f"depth-ai {name}: unavailable ({err})")
            continue
        mod.register(sub)
        registered.add(module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
