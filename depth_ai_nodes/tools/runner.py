"""`depth-ai run`: the pipeline without a ROS install (what `ros2 launch` does, plus a
live status table).

Starts the nodes of depth_ai_nodes/pipeline.py as separate processes with the
same parameter files as the launch files and the shipped DDS profile
(ros/dds.py), measures every output topic by subscribing to it (rate, latency
from the header stamp to receipt, drops from stamp gaps; subscriptions match
the publisher's QoS), restarts a node that dies (with backoff, like launch's
respawn), and on Ctrl-C / SIGTERM / --duration stops the nodes with SIGINT
(SIGKILL after a timeout), removes the /dev/shm segments dead processes left,
and writes a preview PNG of the last frames.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import dataclasses

from depth_ai_nodes.core.stamps import clock_latency
from depth_ai_nodes.pipeline import (BY_KEY, CLOUD, COMPRESSED_PARAMS, EXTRINSICS, IMAGE, INFO, MULTI_HOST_PARAMS,
                                     Choices, Output, Planned, expected_rate, load_params_file, plan)
from depth_ai_nodes.tools.bag import message_class

RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
CPU_WARM_UP_S = 5.0    # a node's CPU share is reported from this long after its start (imports, JIT load)
STABLE_AFTER_S = 30.0   # a node that ran this long restarts with the shortest backoff again
EXIT_CONFIG_ERROR = 2
DIAGNOSTICS = ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray")  # relayed by the live view too


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="run the pipeline (built-in scene by default) with a live status table",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--source", choices=("synthetic", "realsense", "file", "images"), default=None,
                   help="camera source (default: a --params-file's camera source, else the built-in scene; "
                        "images: your files, with images.* in a --params-file, docs/camera_node.md)")
    p.add_argument("--file", default="", help="RealSense recording (.bag/.db3) for --source file")
    p.add_argument("--model", default="", help="model spec YAML for the inference node, or the name "
                   "of a shipped one, e.g. depth_fill_classical (default: the node's shipped model)")
    p.add_argument("--lidar", choices=("synthetic", "kitti", "ouster", "files", "none"), default=None,
                   help="LiDAR source (none: no LiDAR, no fusion; default: a --params-file's lidar source, "
                        "else the built-in scene)")
    p.add_argument("--lidar-path", default="", help="KITTI folder, Ouster pcap, or a folder / glob of "
                   ".bin / .pcd point files for --lidar kitti|ouster|files")
    p.add_argument("--no-inference", action="store_true", help="do not start the inference node")
    p.add_argument("--no-fusion", action="store_true", help="do not start the fusion node")
    p.add_argument("--duration", type=float, default=0.0,
                   help="stop by itself after this many seconds (0: until Ctrl-C)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for every node")
    p.add_argument("--params-file", action="append", default=[], metavar="YAML",
                   help="extra ROS params file given to every node after its own "
                   "(node sections by node name, or /**); repeatable")
    p.add_argument("--use-sim-time", action="store_true", help="nodes use /clock")
    p.add_argument("--status-period", type=float, default=None,
                   help="seconds between status lines when not on a terminal (default 5; "
                   "a terminal gets a table refreshed every second)")
    p.add_argument("--stop-timeout", type=float, default=10.0,
                   help="seconds to wait after SIGINT before SIGKILL")
    p.add_argument("--log-dir", default="", help="folder for the nodes' output "
                   "(default: a new temporary folder)")
    p.add_argument("--preview", default="", help="PNG written when the run stops "
                   "(default: preview.png in the log folder)")
    p.add_argument("--no-preview", action="store_true", help="write no preview PNG")
    p.add_argument("--no-restart", action="store_true", help="do not restart nodes that die")
    p.add_argument("--no-monitor", action="store_true",
                   help="do not subscribe to the nodes' outputs: no rates, latencies or preview, the nodes "
                        "are still started, watched, restarted and their CPU reported (the robot of a split "
                        "pipeline: every image the runner receives costs that small computer CPU)")
    p.add_argument("--only", default="", metavar="NODES",
                   help="start only these nodes (comma list of camera, inference, lidar, fusion): split the "
                        "pipeline across machines, e.g. --only camera,lidar on the robot and --only "
                        "inference,fusion on the server (with --multi-host on both)")
    p.add_argument("--multi-host", action="store_true",
                   help="the pipeline spans machines: config/fastdds_multi_host.xml, discovery on the local "
                        "network (ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET), reliable QoS on the sensor streams "
                        "so a lost frame is resent; the same ROS_DOMAIN_ID on every machine")
    p.add_argument("--compressed", action="store_true",
                   help="camera images travel as <image>/compressed (JPEG), depth as <depth>/compressedDepth "
                        "(RVL, lossless) and LiDAR scans as <points>/zstd (lossless); the inference and fusion "
                        "nodes subscribe to those (for a slow link; the same flag on every machine)")
    p.add_argument("--foxglove", nargs="?", type=int, const=8765, default=None, metavar="PORT",
                   help="live view: a Foxglove WebSocket server on PORT (default 8765) relaying images, "
                        "depth, clouds and /diagnostics to Foxglove or Lichtblick (needs foxglove-sdk)")
    p.add_argument("--foxglove-host", default="127.0.0.1",
                   help="address the live view listens on (0.0.0.0: every interface)")
    p.set_defaults(func=run)


def params_file_value(files: list[str], key: str, name: str) -> Any:
    """What the --params-file files set for parameter `name` of pipeline node `key` (the last
    file wins), None when none sets it."""
    node = BY_KEY[key].node_name
    value = None
    for f in files:
        value = load_params_file(f, node).get(name, value)
    return value


def choices_from_args(args: argparse.Namespace) -> Choices:
    """The runner's choices. A source option given on the command line wins over a params file;
    one left out takes the params file's, else the built-in scene (a default must not override
    what a user's file says: `source: files` there played the scene before)."""
    files = args.params_file
    source = args.source or params_file_value(files, "camera", "source") or "synthetic"
    lidar = args.lidar or params_file_value(files, "lidar", "source") or "synthetic"
    return Choices(source=str(source), file_path=args.file, model=args.model, lidar=str(lidar),
                   lidar_path=args.lidar_path, inference=not args.no_inference, fusion=not args.no_fusion,
                   use_sim_time=args.use_sim_time)


def run(args: argparse.Namespace) -> int:
    from depth_ai_nodes.ros.executor import executor_kind

    try:
        executor_kind()  # this process and every node it starts read DEPTH_AI_EXECUTOR
    except ValueError as err:
        print(f"depth-ai run: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    for f in args.params_file:
        if not Path(f).is_file():
            print(f"depth-ai run: params file {f} does not exist", file=sys.stderr)
            return EXIT_CONFIG_ERROR
        try:
            load_params_file(f)
        except ValueError as err:
            print(f"depth-ai run: {err}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
    choices = choices_from_args(args)
    if choices.source == "file" and not (args.file or params_file_value(args.params_file, "camera", "file_path")):
        print("depth-ai run: --source file needs --file <recording .bag or .db3>", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    planned = plan(choices)
    if args.only:
        keys = {k.strip() for k in args.only.split(",") if k.strip()}
        unknown = keys - {p.spec.key for p in planned} - {"camera", "inference", "lidar", "fusion"}
        if unknown or not keys:
            print(f"depth-ai run: --only {args.only!r}: use camera, inference, lidar, fusion", file=sys.stderr)
            return EXIT_CONFIG_ERROR
        planned = [p for p in planned if p.spec.key in keys]
        for p in planned:  # what is not started here runs elsewhere
            p.spec = dataclasses.replace(p.spec, requires=tuple(r for r in p.spec.requires if r in keys))
    for p in planned:
        p.extra_params_files = [Path(f).resolve() for f in args.params_file]
        if args.multi_host:
            p.params.update(MULTI_HOST_PARAMS.get(p.spec.key, {}))
        if args.compressed:
            p.params.update(COMPRESSED_PARAMS.get(p.spec.key, {}))

    # The DDS profile and malloc tuning must be in place before rclpy.init,
    # for this process (the monitor) and every node it starts.
    from depth_ai_nodes.ros.dds import dds_environment

    env = dds_environment(multi_host=args.multi_host)
    if args.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(args.domain_id)
    os.environ.update(env)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="depth_ai_run_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    tty = sys.stdout.isatty()
    period = args.status_period if args.status_period is not None else (1.0 if tty else 5.0)
    relay = None
    if args.foxglove is not None and args.no_monitor:
        print("depth-ai run: --foxglove relays what the runner monitors: drop --no-monitor", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.foxglove is not None:
        from depth_ai_nodes.tools.live_view import FoxgloveRelay

        try:
            relay = FoxgloveRelay(args.foxglove_host, args.foxglove)
        except (RuntimeError, OSError) as err:
            print(f"depth-ai run: --foxglove: {err}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
    runner = Runner(planned, env=env, log_dir=log_dir, duration=args.duration,
                    status_period=period, tty=tty, stop_timeout=args.stop_timeout,
                    restart=not args.no_restart, relay=relay, monitor=not args.no_monitor)
    if relay is not None:
        runner.say(f"live view: Foxglove WebSocket server at {relay.url} (Foxglove or Lichtblick: "
                   f"open connection -> Foxglove WebSocket)")
    try:
        code = runner.run()
    finally:
        if relay is not None:
            relay.close()
    if not (args.no_preview or args.no_monitor):
        runner.write_preview(Path(args.preview) if args.preview else log_dir / "preview.png")
    return code


# --- processes ---------------------------------------------------------------------------


def executable_command(planned: Planned) -> list[str] | None:
    """The command that starts a node: its console script next to this Python, on
    PATH, or `python -m module`; None when the node is not installed."""
    spec = planned.spec
    if not spec.available():
        return None
    script = Path(sys.executable).parent / spec.executable
    if script.exists():
        return [str(script)]
    found = shutil.which(spec.executable)
    if found:
        return [found]
    return [sys.executable, "-m", spec.module]


@dataclass
class Child:
    """One node process and its restart bookkeeping."""

    planned: Planned
    command: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_row: int = 0
    restart_at: float = 0.0     # monotonic time of the pending restart (0: none)
    failed: str = ""            # set when it will not be restarted
    exit_codes: list[int] = field(default_factory=list)
    cpu_mark: tuple[float, float] | None = None   # (monotonic time, CPU seconds) after warm-up

    @property
    def name(self) -> str:
        return self.planned.spec.executable

    def mark_cpu(self) -> None:
        """Remember the CPU time once the node is past its warm-up (once per process)."""
        now = time.monotonic()
        if self.cpu_mark is None and self.alive() and now - self.started_at >= CPU_WARM_UP_S:
            used = process_cpu_seconds(self.proc.pid)
            if used is not None:
                self.cpu_mark = (now, used)

    def cpu_share(self) -> float | None:
        """CPU of the node process (all its threads) since the warm-up mark, as a share of one
        core; None before the mark or where /proc is not readable."""
        if self.cpu_mark is None or not self.alive():
            return None
        used = process_cpu_seconds(self.proc.pid)
        elapsed = time.monotonic() - self.cpu_mark[0]
        return None if used is None or elapsed <= 0 else (used - self.cpu_mark[1]) / elapsed

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, env: dict[str, str]) -> None:
        log = open(self.log_path, "ab")
        log.write(f"\n=== {' '.join(self.command)} ===\n".encode())
        log.flush()
        # Own session: the terminal's Ctrl-C reaches the runner only, which
        # then stops the nodes in order; killpg reaches a node's children too.
        self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        self.started_at = time.monotonic()
        self.restart_at = 0.0
        self.cpu_mark = None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").rstrip().splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc; None elsewhere or once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- topic measurements ------------------------------------------------------------------


def header_stamp(raw: bytes) -> float | None:
    """The header stamp (s) of a serialized message whose first field is a Header:
    CDR = 4-byte encapsulation, then int32 sec, uint32 nanosec."""
    if len(raw) < 12:
        return None
    endian = "<" if raw[1] == 1 else ">"
    sec, nsec = struct.unpack_from(endian + "iI", raw, 4)
    return sec + nsec * 1e-9


def has_header(cls: Any) -> bool:
    fields = cls.get_fields_and_field_types()
    return bool(fields) and next(iter(fields.items())) == ("header", "std_msgs/Header")


class TopicStats:
    """Rate, stamp->receive latency and stamp-gap drops of one subscribed topic."""

    def __init__(self, output: Output, expected_hz: float, stamped: bool) -> None:
        from depth_ai_nodes.ros.diagnostics import RateMeter

        self.output = output
        self.expected_hz = expected_hz
        self.stamped = stamped
        self.meter = RateMeter(window_s=3.0)
        self.count = 0
        self.drops = 0
        self.first_rx = 0.0
        self.last_rx = 0.0
        self.last_stamp: float | None = None
        self.last_raw: bytes | None = None
        # a few older IR / color frames: the preview pairs the LiDAR depth with its frame
        self.history: deque[bytes] = deque(maxlen=0)

    def on_message(self, raw: bytes) -> None:
        now_wall, now = time.time(), time.monotonic()
        stamp = header_stamp(raw) if self.stamped else None
        latency = clock_latency(now_wall, stamp) if stamp is not None and stamp > 0 else None
        if stamp is not None and self.last_stamp is not None and self.expected_hz > 0:
            gap = stamp - self.last_stamp
            period = 1.0 / self.expected_hz
            if gap > 1.5 * period:
                self.drops += int(round(gap / period)) - 1
        if stamp is not None:
            self.last_stamp = stamp
        if self.count == 0 and self.output.msgtype == IMAGE:
            self._choose_history(raw)
        self.meter.tick(latency, now)
        self.count += 1
        if not self.first_rx:
            self.first_rx = now
        self.last_rx = now
        if self.last_raw is not None and self.history.maxlen:
            self.history.append(self.last_raw)
        self.last_raw = raw

    def _choose_history(self, raw: bytes) -> None:
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import Image

        from depth_ai_nodes.tools.preview import classify

        try:
            kind = classify(self.output.topic, deserialize_message(raw, Image))
        except Exception:  # a malformed first message: no history, nothing else changes
            return
        if kind in ("ir", "color"):
            self.history = deque(maxlen=15)

    def mean_rate(self) -> float:
        span = self.last_rx - self.first_rx
        return (self.count - 1) / span if self.count > 1 and span > 0 else 0.0

    def state(self) -> str:
        if self.count == 0:
            return "WAIT"
        if time.monotonic() - self.last_rx > max(3.0, 5.0 / max(self.expected_hz, 0.1)):
            return "STALE"
        if self.expected_hz and self.meter.rate() < self.output.min_ratio * self.expected_hz:
            return "LOW"
        return "OK"


# --- the runner --------------------------------------------------------------------------


class Runner:
    """Starts, watches, restarts and stops the planned nodes; shows the status table."""

    def __init__(self, planned: list[Planned], env: dict[str, str], log_dir: Path,
                 duration: float = 0.0, status_period: float = 5.0, tty: bool = False,
                 stop_timeout: float = 10.0, restart: bool = True,
                 out: TextIO | None = None, relay: Any = None, monitor: bool = True) -> None:
        self.env = env
        self.monitor = monitor  # False: no subscriptions at all (nodes are only supervised)
        self.log_dir = log_dir
        self.duration = duration
        self.status_period = status_period
        self.tty = tty
        self.stop_timeout = stop_timeout
        self.restart = restart
        self.out = out or sys.stdout
        self.children: list[Child] = []
        self.skipped: list[str] = []
        self.stats: dict[str, TopicStats] = {}
        self.pending: dict[str, tuple[Output, float]] = {}
        self.aux_pending: dict[str, Output] = {}
        self.aux: dict[str, bytes] = {}
        self.subs: dict[str, Any] = {}
        self.relay = relay  # tools.live_view.FoxgloveRelay: every monitored message goes out live too
        self._stop_reason = ""
        self._table_lines = 0
        self._t0 = time.monotonic()
        self._exit_code = 0
        self._plan(planned)

    # -- set-up ---------------------------------------------------------------------------

    def _plan(self, planned: list[Planned]) -> None:
        started_keys = set()
        for p in planned:
            spec = p.spec
            missing = [r for r in spec.requires if r not in started_keys]
            command = executable_command(p)
            if command is None:
                self.skipped.append(f"{spec.executable}: not installed yet ({spec.module} "
                                    f"is missing); skipped")
                continue
            if missing:
                self.skipped.append(f"{spec.executable}: needs {', '.join(missing)}, which "
                                    f"is not running; skipped")
                continue
            started_keys.add(spec.key)
            child = Child(p, command + p.ros_args(), self.log_dir / f"{spec.executable}.log")
            self.children.append(child)
            params = p.effective_params()
            for o in spec.outputs if self.monitor else ():
                if o.monitor and o.enabled(params):
                    self.pending[o.topic] = (o, expected_rate(o, params))
                elif o.msgtype in (INFO, EXTRINSICS) and o.enabled(params):
                    self.aux_pending[o.topic] = o  # for the preview only
        self._advertise_live()

    def _advertise_live(self) -> None:
        """The live view's channel of every topic this runner will monitor, created now, before
        a client is told where to connect: with foxglove-sdk 0.30, a subscription a client makes
        while another channel is being created is now and then lost, and its panel stays empty
        (3 of 20 connections at start-up when channels appeared as their publishers did; 0 of 55
        with them created first)."""
        if self.relay is None:
            return
        for topic, (output, _) in self.pending.items():
            self.relay.relay(topic, output.msgtype)
        for topic, output in self.aux_pending.items():
            self.relay.relay(topic, output.msgtype)
        self.relay.relay(*DIAGNOSTICS)

    def say(self, line: str) -> None:
        """An event line (above the live table on a terminal)."""
        self._clear_table()
        print(f"[depth-ai run] {line}", file=self.out, flush=True)

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> int:
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        for reason in self.skipped:
            self.say(reason)
        if not self.children:
            self.say("no node to start")
            return 1
        self.say(f"ROS_DOMAIN_ID={self.env.get('ROS_DOMAIN_ID', '0')}, DDS profile "
                 f"{self.env.get('FASTDDS_DEFAULT_PROFILES_FILE', '(none)')}, node logs in "
                 f"{self.log_dir}")
        if not self.monitor:
            self.say("--no-monitor: no topic is subscribed to here (no rates, latencies or preview)")
        from depth_ai_nodes.ros.dds import socket_buffer_shortfall

        shortfall = socket_buffer_shortfall(self.env.get("FASTDDS_DEFAULT_PROFILES_FILE"))
        if shortfall:
            self.say(f"warning: {shortfall}")
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("depth_ai_run_monitor")
        from depth_ai_nodes.ros.executor import make_executor

        executor, _ = make_executor()  # the EventsExecutor: half the CPU per message received
        executor.add_node(self.node)
        try:
            for child in self.children:
                child.start(self.env)
                self.say(f"started {child.name} (pid {child.proc.pid})")
            next_check = next_status = 0.0
            while not self._stop_reason:
                executor.spin_once(timeout_sec=0.05)
                now = time.monotonic()
                if self.duration and now - self._t0 >= self.duration:
                    self._stop_reason = f"--duration {self.duration:g} s reached"
                if now >= next_check:
                    next_check = now + 0.5
                    self._watch_children(now)
                    self._subscribe_new()
                if now >= next_status:
                    next_status = now + self.status_period
                    self._show_status()
            self._clear_table()
            self.say(f"stopping: {self._stop_reason}")
            self._show_status(final=True)
        finally:
            self._stop_children()
            executor.shutdown()
            for sub in self.subs.values():
                self.node.destroy_subscription(sub)
            self.node.destroy_node()
            rclpy.try_shutdown()
            for s, handler in previous.items():
                signal.signal(s, handler)
            self._clean_shm()
        return self._exit_code

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stop_reason:  # second Ctrl-C: stop waiting politely
            self.stop_timeout = 0.0
        self._stop_reason = signal.Signals(signum).name

    def _watch_children(self, now: float) -> None:
        for child in self.children:
            if child.failed:
                continue
            if child.proc is not None and child.proc.poll() is not None and not child.restart_at:
                code = child.proc.returncode
                child.exit_codes.append(code)
                ran = now - child.started_at
                if code == EXIT_CONFIG_ERROR:
                    # Restarting cannot fix a configuration: stop the run and say why.
                    child.failed = "configuration error"
                    self._exit_code = EXIT_CONFIG_ERROR
                    self._stop_reason = f"{child.name} has a configuration error"
                    self.say(f"{child.name} stopped with a configuration error (exit 2); not "
                             f"restarting it. Its output:\n{child.log_tail()}")
                elif not self.restart:
                    child.failed = f"exit {code}"
                    self.say(f"{child.name} exited with code {code} after {ran:.1f} s "
                             f"(--no-restart). Its output:\n{child.log_tail()}")
                else:
                    child.failures_in_row = 1 if ran >= STABLE_AFTER_S else child.failures_in_row + 1
                    delay = RESTART_BACKOFF_S[min(child.failures_in_row,
                                                  len(RESTART_BACKOFF_S)) - 1]
                    child.restart_at = now + delay
                    self.say(f"{child.name} exited with code {code} after {ran:.1f} s; "
                             f"restarting in {delay:g} s (restart {child.restarts + 1}). "
                             f"Last output:\n{child.log_tail(6)}")
            elif child.restart_at and now >= child.restart_at:
                self._clean_shm()  # what the dead process left, if nobody maps it now
                child.restarts += 1
                child.start(self.env)
                self.say(f"restarted {child.name} (pid {child.proc.pid}, restart "
                         f"{child.restarts})")
        if all(c.failed for c in self.children):
            self._stop_reason = "every node has stopped"

    def _discover(self) -> None:
        """Image and cloud topics our nodes publish that the table does not list (a
        renamed or new output) are measured too, with no expected rate."""
        for child in self.children:
            spec = child.planned.spec
            ns = "/" + spec.namespace.strip("/") if spec.namespace else "/"
            try:
                topics = self.node.get_publisher_names_and_types_by_node(spec.node_name, ns)
            except Exception:  # node not (yet) in the graph
                continue
            for topic, types in topics:
                if topic in self.stats or topic in self.pending or not types:
                    continue
                if types[0] in (IMAGE, CLOUD):
                    self.pending[topic] = (Output(topic, types[0]), 0.0)

    def _subscribe_new(self) -> None:
        """Subscribe to each expected topic once it has a publisher, with its QoS."""
        from depth_ai_nodes.ros.qos import matching_qos

        if not self.monitor:
            return
        self._discover()
        for topic, output in list(self.aux_pending.items()):
            if self.node.get_publishers_info_by_topic(topic):
                self.subs[topic] = self.node.create_subscription(
                    message_class(output.msgtype), topic,
                    self._also_live(topic, output.msgtype, lambda raw, t=topic: self.aux.__setitem__(t, raw)),
                    matching_qos(self.node, topic), raw=True)
                del self.aux_pending[topic]

        for topic, (output, hz) in list(self.pending.items()):
            if not self.node.get_publishers_info_by_topic(topic):
                continue
            try:
                cls = message_class(output.msgtype)
            except ImportError as err:
                self.say(f"cannot monitor {topic}: type {output.msgtype} unavailable ({err})")
                del self.pending[topic]
                continue
            stats = TopicStats(output, hz, has_header(cls))
            self.stats[topic] = stats
            self.subs[topic] = self.node.create_subscription(
                cls, topic, self._also_live(topic, output.msgtype, stats.on_message),
                matching_qos(self.node, topic), raw=True)
            del self.pending[topic]
        if self.relay is not None and "/diagnostics" not in self.subs:
            from diagnostic_msgs.msg import DiagnosticArray

            self.subs["/diagnostics"] = self.node.create_subscription(
                DiagnosticArray, "/diagnostics", self.relay.relay(*DIAGNOSTICS),
                10, raw=True)

    def _also_live(self, topic: str, msgtype: str, callback: Any) -> Any:
        """callback, and the live view's relay of the same raw message when there is one."""
        if self.relay is None:
            return callback
        live = self.relay.relay(topic, msgtype)

        def both(raw: bytes) -> None:
            callback(raw)
            live(raw)
        return both

    # -- status ---------------------------------------------------------------------------

    def status_rows(self) -> list[str]:
        rows = []
        for topic in [*self.stats, *self.pending]:
            s = self.stats.get(topic)
            if s is None:
                hz = self.pending[topic][1]
                rows.append(f"{topic:<44} {'-':>6} / {_hz(hz)} Hz  {'-':>9}  {'-':>5}  "
                            f"{0:>6}  WAIT")
                continue
            lat = s.meter.latency_ms()
            lat_s = f"{lat:7.1f}ms" if lat == lat else f"{'-':>9}"
            rows.append(f"{topic:<44} {s.meter.rate():6.1f} / {_hz(s.expected_hz)} Hz  "
                        f"{lat_s}  {s.drops:5d}  {s.count:6d}  {s.state()}")
        return rows

    def _node_line(self) -> str:
        parts = []
        for c in self.children:
            if c.failed:
                state = f"FAILED ({c.failed})"
            elif c.restart_at:
                state = "restarting"
            elif c.alive():
                state = f"pid {c.proc.pid}"
            else:
                state = "stopped"
            extra = f", {c.restarts} restarts" if c.restarts else ""
            parts.append(f"{c.name} {state}{extra}")
        return "; ".join(parts)

    def _show_status(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self._t0
        header = (f"{'topic':<44} {'rate / expected':>18}  {'latency':>9}  {'drops':>5}  "
                  f"{'count':>6}  state")
        rows = self.status_rows()
        for child in self.children:
            child.mark_cpu()
        if final:
            import resource

            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (usage.ru_utime + usage.ru_stime) / max(elapsed, 1e-6)
            print(f"[depth-ai run] summary after {elapsed:.1f} s: {self._node_line()}; "
                  f"the runner's own CPU (monitoring) {100 * cpu:.1f} % of one core",
                  file=self.out)
            for child in self.children:
                share = child.cpu_share()
                if share is not None:
                    print(f"[depth-ai run] summary CPU {child.name}: {100 * share:.1f} % of one core "
                          f"(after its first {CPU_WARM_UP_S:g} s)", file=self.out)
            for topic, s in self.stats.items():
                lat = s.meter.latency_ms()
                print(f"[depth-ai run] summary {topic}: {s.count} messages, mean "
                      f"{s.mean_rate():.2f} Hz (expected {s.expected_hz:g}), latency median "
                      f"{lat:.1f} ms, drops {s.drops}", file=self.out)
            for topic in self.pending:
                print(f"[depth-ai run] summary {topic}: never published", file=self.out)
            self.out.flush()
            return
        if self.tty:
            self._clear_table()
            lines = [f"depth-ai run  {elapsed:6.1f} s  {self._node_line()}", header, *rows,
                     "Ctrl-C stops everything"]
            # one terminal row per line, or the redraw's cursor-up count would be wrong
            width = max(20, shutil.get_terminal_size().columns - 1)
            lines = [line[:width] for line in lines]
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()
            self._table_lines = len(lines)
        else:
            print(f"[depth-ai run] status {elapsed:.1f} s: {self._node_line()}", file=self.out)
            for row in rows:
                print(f"[depth-ai run] status {row}", file=self.out)
            self.out.flush()

    def _clear_table(self) -> None:
        if self.tty and self._table_lines:
            self.out.write(f"\x1b[{self._table_lines}F\x1b[J")
            self.out.flush()
            self._table_lines = 0

    # -- shutdown -------------------------------------------------------------------------

    def _stop_children(self) -> None:
        running = [c for c in self.children if c.alive()]
        for c in running:
            try:
                os.killpg(c.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        timeout = self.stop_timeout
        start = time.monotonic()
        for c in running:
            # short waits, so a second Ctrl-C (stop_timeout -> 0) ends the wait at once
            while c.proc.poll() is None and time.monotonic() - start < min(timeout,
                                                                            self.stop_timeout):
                try:
                    c.proc.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
            if c.proc.poll() is not None:
                self.say(f"{c.name} stopped (exit {c.proc.returncode})")
            else:
                self.say(f"{c.name} did not stop within {time.monotonic() - start:.1f} s of "
                         f"SIGINT: SIGKILL")
                try:
                    os.killpg(c.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                c.proc.wait()
        for c in self.children:  # a node's own children, if it left any
            if c.proc is not None:
                try:
                    os.killpg(c.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def _clean_shm(self) -> None:
        from depth_ai_nodes.ros.dds import clean_stale_fastdds_shm

        removed = clean_stale_fastdds_shm()
        if removed:
            self.say(f"removed {len(removed)} stale Fast DDS /dev/shm file(s)")

    def write_preview(self, path: Path) -> Path | None:
        """A preview PNG of the last messages seen (depth, IR, color, LiDAR)."""
        try:
            from rclpy.serialization import deserialize_message

            from depth_ai_nodes.tools.preview import write_preview

            msgs, history = {}, {}
            for topic, s in self.stats.items():
                if s.last_raw is not None:
                    cls = message_class(s.output.msgtype)
                    msgs[topic] = deserialize_message(s.last_raw, cls)
                    history[topic] = [deserialize_message(r, cls) for r in s.history]
            if not msgs:
                self.say("no messages received: no preview written")
                return None
            for topic, raw in self.aux.items():
                msgs[topic] = deserialize_message(raw, message_class(
                    next(o.msgtype for c in self.children for o in c.planned.spec.outputs
                         if o.topic == topic)))
            written = write_preview(msgs, path, history)
            self.say(f"preview written to {written}")
            return written
        except Exception as err:  # the preview must never turn a clean stop into an error
            self.say(f"preview not written: {err}")
            return None


def _hz(expected: float) -> str:
    """Expected rate column: '-' for topics with no expectation (discovered ones)."""
    return f"{expected:4.0f}" if expected > 0 else f"{'-':>4}"
