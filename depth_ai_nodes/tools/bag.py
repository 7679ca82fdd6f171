"""`depth-ai record` and `depth-ai play`: rosbag2 (mcap / sqlite3) without rosbag2.

Bags are read and written with the pure-Python `rosbags` package in the layout
`ros2 bag` uses (metadata.yaml version 9, as Jazzy and Kilted write it), so
bags go both ways between this tool and `ros2 bag`, and mcap files open in
Foxglove with their schemas. Messages are never deserialized: the recorder
subscribes with `raw=True` and stores the CDR bytes; the player publishes the
stored bytes (`publish(bytes)`), so a round trip is byte-exact and cheap.

Message types come from the graph when recording and from the bag's metadata
when playing; the Python class is imported by name (`pkg.msg.Name`), so our
own messages (depth_ai_nodes/msg) work like any other. Their definitions for
the bag (schemas) come from the .msg files when installed, else from the
class's field table. A topic whose type is not installed is skipped with a
message naming it.

Subscriptions match each publisher's reliability and durability (ros/qos.py),
and the player offers each topic the QoS it was recorded with; it can wait
until subscribers have matched before the first message, so nothing is lost
to discovery (the first-messages problem of `ros2 bag play`).
"""
from __future__ import annotations

import argparse
import importlib
import os
import select
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

EXCLUDED_BY_ALL = ("/rosout", "/parameter_events")
CLOCK_TOPIC = "/clock"


# --- message types -----------------------------------------------------------------------


def message_class(msgtype: str) -> Any:
    """'pkg/msg/Name' (or 'pkg/Name') -> the installed Python message class.

    Raises ImportError naming the type when it is not installed."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise ImportError(f"{msgtype!r} is not a message type name (pkg/msg/Name)")
    pkg, kind, name = parts
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
        return getattr(module, name)
    except (ImportError, AttributeError):
        raise ImportError(f"message type {msgtype} is not installed here (no Python "
                          f"{pkg}.{kind}.{name})") from None


_IDL_TO_MSG = {"boolean": "bool", "octet": "byte", "double": "float64", "float": "float32",
               "long double": "float64", "char": "char"}


def _msg_field_type(idl: str) -> tuple[str, str | None]:
    """A rosidl Python field type ('sequence<double>', 'double[9]', 'pkg/Name',
    'string<=5') -> (.msg field type, nested type or None)."""
    suffix = ""
    base = idl
    if base.startswith("sequence<"):
        inner = base[len("sequence<"):-1]
        if "," in inner:
            inner, bound = (s.strip() for s in inner.split(","))
            suffix = f"[<={bound}]"
        else:
            suffix = "[]"
        base = inner
    elif base.endswith("]") and "[" in base:
        base, size = base[:-1].split("[")
        suffix = f"[{size}]"
    base = _IDL_TO_MSG.get(base, base)
    nested = base if "/" in base else None
    return base + suffix, nested


def msg_text(cls: Any) -> tuple[str, list[str]]:
    """A .msg definition of `cls` from its field table, and its nested types."""
    lines, nested = [], []
    for name, idl in cls.get_fields_and_field_types().items():
        ftype, dep = _msg_field_type(idl)
        lines.append(f"{ftype} {name}")
        if dep:
            nested.append(dep if dep.count("/") == 2 else dep.replace("/", "/msg/"))
    return "\n".join(lines) + "\n", nested


def _msg_file(msgtype: str) -> Path | None:
    """The installed .msg file of a type (colcon share/, or this checkout's msg/)."""
    pkg, _, name = msgtype.split("/")
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(pkg)) / "msg" / f"{name}.msg")
    except Exception:  # ament_index absent or package unknown to it
        pass
    if pkg == "depth_ai_nodes":
        from depth_ai_nodes.resources import share_dir

        try:
            candidates.append(share_dir() / "msg" / f"{name}.msg")
        except FileNotFoundError:
            pass
    return next((c for c in candidates if c.is_file()), None)


def typestore_for(msgtypes: Iterable[str]) -> Any:
    """A rosbags Kilted typestore that knows `msgtypes` (ours added from .msg files or
    the installed classes), for message definitions and hashes in the bag."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    todo = list(msgtypes)
    seen: set[str] = set()
    while todo:
        msgtype = todo.pop()
        if msgtype in store.fielddefs or msgtype in seen:
            continue
        seen.add(msgtype)
        path = _msg_file(msgtype)
        cls = message_class(msgtype)
        text, nested = msg_text(cls)
        if path is not None:
            text = path.read_text()
        store.register(get_types_from_msg(text, msgtype))
        todo.extend(n for n in nested if n not in store.fielddefs)
    return store


# --- QoS between rclpy and the bag metadata ----------------------------------------------


def qos_to_bag(profile: Any) -> Any:
    """rclpy QoSProfile -> rosbags Qos (the enums share their numbers)."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)

    def dur(d: Any) -> QosTime:
        ns = getattr(d, "nanoseconds", 0)
        return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)

    return Qos(QosHistory(int(profile.history)), int(profile.depth),
               QosReliability(int(profile.reliability)), QosDurability(int(profile.durability)),
               dur(profile.deadline), dur(profile.lifespan),
               QosLiveliness(int(profile.liveliness)), dur(profile.liveliness_lease_duration),
               bool(profile.avoid_ros_namespace_conventions))


def qos_from_bag(profiles: list[Any], override: str = "recorded") -> Any:
    """The QoS to offer on replay: what the topic was recorded with (reliable only
    if every recorded publisher was), or `override` ('reliable' | 'best_effort')."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
    if override == "reliable":
        return profile
    if override == "best_effort":
        profile.reliability = ReliabilityPolicy.BEST_EFFORT
        return profile
    if profiles:
        if any(int(getattr(p.reliability, "value", p.reliability)) == 2 for p in profiles):
            profile.reliability = ReliabilityPolicy.BEST_EFFORT
        if all(int(getattr(p.durability, "value", p.durability)) == 1 for p in profiles):
            profile.durability = DurabilityPolicy.TRANSIENT_LOCAL
        profile.depth = max(10, max(int(p.depth) for p in profiles))
    return profile


# --- ROS process set-up --------------------------------------------------------------------


class _Stop:
    """SIGINT/SIGTERM -> a flag (rclpy's own handler would tear the context down
    under the writer)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, *_: Any) -> None:
        self.event.set()

    def restore(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)


def _init_ros(domain_id: int | None) -> Any:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from depth_ai_nodes.ros.dds import dds_environment

    os.environ.update(dds_environment())
    if domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    return rclpy


def _log(msg: str) -> None:
    print(f"[depth-ai] {msg}", file=sys.stderr, flush=True)


# --- record --------------------------------------------------------------------------------


@dataclass
class RecordOptions:
    output: Path
    topics: list[str]
    all_topics: bool = False
    storage: str = "mcap"              # mcap | sqlite3
    compression: str = "none"          # none | zstd
    compression_mode: str = "file"     # file | message
    duration: float = 0.0
    max_messages: int = 0              # stop after this many in total (0: no limit)
    domain_id: int | None = None


def record(opts: RecordOptions) -> int:
    """Record until SIGINT/SIGTERM, --duration or --max-messages."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

    from depth_ai_nodes.ros.qos import matching_qos

    if opts.output.exists():
        _log(f"record: {opts.output} exists already; choose a new output path")
        return 2
    if not opts.topics and not opts.all_topics:
        _log("record: name topics to record, or -a for all")
        return 2
    stop = _Stop()
    rclpy = _init_ros(opts.domain_id)
    node = rclpy.create_node("depth_ai_record")
    plugin = StoragePlugin.MCAP if opts.storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(opts.output, version=Writer.VERSION_LATEST, storage_plugin=plugin)
    if opts.compression != "none":
        writer.set_compression(CompressionMode[opts.compression_mode.upper()],
                               CompressionFormat[opts.compression.upper()])
    writer.open()
    lock = threading.Lock()
    total = [0]
    subs: dict[str, Any] = {}
    skipped: set[str] = set()

    def on_message(conn: Any, raw: bytes) -> None:
        with lock:
            if writer.storage is None:
                return
            writer.write(conn, time.time_ns(), raw)
            total[0] += 1
            if opts.max_messages and total[0] >= opts.max_messages:
                stop.event.set()

    def discover() -> None:
        for topic, types in node.get_topic_names_and_types():
            if topic in subs or topic in skipped:
                continue
            if opts.topics and topic not in opts.topics:
                continue
            if not opts.topics and topic in EXCLUDED_BY_ALL:
                continue
            infos = node.get_publishers_info_by_topic(topic)
            if not infos:
                continue
            msgtype = types[0]
            try:
                cls = message_class(msgtype)
                store = typestore_for([msgtype])
            except (ImportError, ValueError) as err:
                _log(f"record: skipping {topic}: {err}")
                skipped.add(topic)
                continue
            qos = matching_qos(node, topic, depth=100)
            with lock:
                conn = writer.add_connection(topic, msgtype, typestore=store,
                                             offered_qos_profiles=[qos_to_bag(i.qos_profile)
                                                                   for i in infos])
            subs[topic] = node.create_subscription(
                cls, topic, lambda raw, c=conn: on_message(c, raw), qos, raw=True)
            _log(f"record: {topic} [{msgtype}] "
                 f"{'reliable' if int(qos.reliability) == 1 else 'best effort'}")

    t0 = time.monotonic()
    next_discovery = 0.0
    try:
        while not stop.event.is_set():
            now = time.monotonic()
            if now >= next_discovery:
                discover()
                next_discovery = now + 0.2
            if opts.duration and now - t0 >= opts.duration:
                break
            rclpy.spin_once(node, timeout_sec=0.02)
        # Drain what has arrived already.
        for _ in range(20):
            rclpy.spin_once(node, timeout_sec=0.0)
    finally:
        for sub in subs.values():
            node.destroy_subscription(sub)
        with lock:
            writer.close()
        node.destroy_node()
        rclpy.try_shutdown()
        stop.restore()
    missing = [t for t in opts.topics if t not in subs and t not in skipped]
    _log(f"record: {total[0]} messages on {len(subs)} topics -> {opts.output}")
    if missing:
        _log(f"record: never saw a publisher of {', '.join(missing)}")
    return 0


# --- play --------------------------------------------------------------------------------


@dataclass
class PlayOptions:
    bag: Path
    rate: float = 1.0
    loop: bool = False
    start_offset: float = 0.0
    start_paused: bool = False
    resume_after: float = -1.0         # seconds after which a paused start resumes (-1: stdin)
    clock: float = 0.0                 # publish /clock at this rate (Hz), 0 = no /clock
    topics: list[str] | None = None
    wait_for_subscribers: int = 0      # wait until each (waited) topic has this many
    wait_topics: list[str] | None = None
    wait_timeout: float = 30.0
    qos: str = "recorded"              # recorded | reliable | best_effort
    domain_id: int | None = None


def _wait_resume(opts: PlayOptions, stop: threading.Event) -> None:
    """A paused start: resume after --resume-after s, or when a line arrives on stdin."""
    _log("play: paused; " + (f"resuming in {opts.resume_after:g} s" if opts.resume_after >= 0
                             else "press Enter to start"))
    deadline = time.monotonic() + opts.resume_after if opts.resume_after >= 0 else None
    while not stop.is_set():
        if deadline is not None:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
            continue
        ready, _, _ = select.select([sys.stdin], [], [], 0.1)
        if ready:
            sys.stdin.readline()
            break
    _log("play: resumed")


def play(opts: PlayOptions) -> int:
    """Publish a bag's messages with their original timing (scaled by --rate)."""
    from rosbags.rosbag2 import Reader

    if not opts.bag.exists():
        _log(f"play: no bag at {opts.bag}")
        return 2
    if opts.rate <= 0:
        _log("play: --rate must be > 0")
        return 2
    stop = _Stop()
    rclpy = _init_ros(opts.domain_id)
    node = rclpy.create_node("depth_ai_play")
    clock_pub = None
    if opts.clock > 0:
        from rosgraph_msgs.msg import Clock

        clock_pub = node.create_publisher(Clock, CLOCK_TOPIC, 10)
    published = 0
    try:
        with Reader(opts.bag) as reader:
            pubs: dict[int, Any] = {}
            for conn in reader.connections:
                if opts.topics and conn.topic not in opts.topics:
                    continue
                try:
                    cls = message_class(conn.msgtype)
                except ImportError as err:
                    _log(f"play: skipping {conn.topic}: {err}")
                    continue
                profiles = list(getattr(conn.ext, "offered_qos_profiles", []) or [])
                pubs[conn.id] = node.create_publisher(cls, conn.topic,
                                                      qos_from_bag(profiles, opts.qos))
            if not pubs:
                _log("play: nothing to play (no topic of an installed type)")
                return 1
            by_topic = {p.topic_name: p for p in pubs.values()}
            if clock_pub is not None:  # /clock can be waited on too (--wait-topics /clock)
                by_topic[CLOCK_TOPIC] = clock_pub
            if opts.wait_for_subscribers > 0:
                waited = opts.wait_topics or [t for t in by_topic if t != CLOCK_TOPIC]
                unknown = [t for t in waited if t not in by_topic]
                if unknown:
                    _log(f"play: --wait-topics not in the bag (nor /clock with --clock): "
                         f"{', '.join(unknown)}")
                    return 2
                deadline = time.monotonic() + opts.wait_timeout
                while not stop.event.is_set():
                    short = [t for t in waited if by_topic[t].get_subscription_count()
                             < opts.wait_for_subscribers]
                    if not short:
                        break
                    if time.monotonic() > deadline:
                        _log(f"play: after {opts.wait_timeout:g} s still fewer than "
                             f"{opts.wait_for_subscribers} subscriber(s) on "
                             f"{', '.join(short)}; playing anyway")
                        break
                    rclpy.spin_once(node, timeout_sec=0.02)
            if opts.start_paused:
                _wait_resume(opts, stop.event)
            start_ns = reader.start_time + int(opts.start_offset * 1e9)
            conns = [c for c in reader.connections if c.id in pubs]
            while not stop.event.is_set():
                published += _play_once(reader, conns, pubs, start_ns, opts, clock_pub,
                                        stop.event)
                if not opts.loop:
                    break
        _log(f"play: {published} messages published")
        # Give reliable readers time to take the last messages before we leave.
        time.sleep(0.2)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        stop.restore()
    return 0


def _play_once(reader: Any, conns: list[Any], pubs: dict[int, Any], start_ns: int,
               opts: PlayOptions, clock_pub: Any, stop: threading.Event) -> int:
    t_wall0 = time.monotonic()
    count = 0
    clock_period = 1.0 / opts.clock if opts.clock > 0 else 0.0
    next_clock = 0.0
    for conn, stamp, data in reader.messages(connections=conns, start=start_ns):
        target = t_wall0 + (stamp - start_ns) * 1e-9 / opts.rate
        while not stop.is_set():
            now = time.monotonic()
            if clock_pub is not None and now >= next_clock:
                bag_now = start_ns + int(max(0.0, now - t_wall0) * opts.rate * 1e9)
                _publish_clock(clock_pub, min(bag_now, stamp))
                next_clock = now + clock_period
            if now >= target:
                break
            wake = target if clock_pub is None else min(target, next_clock)
            time.sleep(min(0.05, max(0.0, wake - now)))
        if stop.is_set():
            break
        if clock_pub is not None:
            _publish_clock(clock_pub, stamp)
        pubs[conn.id].publish(bytes(data))
        count += 1
    return count


def _publish_clock(pub: Any, stamp_ns: int) -> None:
    from rosgraph_msgs.msg import Clock

    msg = Clock()
    msg.clock.sec, msg.clock.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    pub.publish(msg)


# --- command line ------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser("record", help="record topics to a rosbag2 (mcap or sqlite3)",
                              description="Record topics to a rosbag2 bag (types from the "
                              "graph, QoS matched to each publisher). Ctrl-C stops.")
    r.add_argument("topics", nargs="*", help="topics to record")
    r.add_argument("-a", "--all", action="store_true",
                   help=f"record every topic (except {', '.join(EXCLUDED_BY_ALL)})")
    r.add_argument("-o", "--output", required=True, help="bag folder to create")
    r.add_argument("-s", "--storage", choices=("mcap", "sqlite3"), default="mcap")
    r.add_argument("--compression", choices=("none", "zstd"), default="none")
    r.add_argument("--compression-mode", choices=("file", "message"), default="file")
    r.add_argument("--duration", type=float, default=0.0, help="stop after S seconds")
    r.add_argument("--max-messages", type=int, default=0, help="stop after N messages")
    r.add_argument("--domain-id", type=int, default=None)
    r.set_defaults(func=lambda a: record(RecordOptions(
        output=Path(a.output), topics=a.topics, all_topics=a.all, storage=a.storage,
        compression=a.compression, compression_mode=a.compression_mode, duration=a.duration,
        max_messages=a.max_messages, domain_id=a.domain_id)))

    p = subparsers.add_parser("play", help="play a rosbag2 bag (ros2 bag record's too)",
                              description="Publish a rosbag2 bag's messages with their "
                              "original timing.")
    p.add_argument("bag", help="bag folder (or .mcap / .db3 file's folder)")
    p.add_argument("-r", "--rate", type=float, default=1.0, help="speed factor")
    p.add_argument("-l", "--loop", action="store_true", help="start over at the end")
    p.add_argument("--start-offset", type=float, default=0.0, help="skip the first S seconds")
    p.add_argument("--start-paused", action="store_true",
                   help="wait before the first message (Enter or --resume-after resumes)")
    p.add_argument("--resume-after", type=float, default=-1.0,
                   help="with --start-paused: resume after S seconds instead of on Enter")
    p.add_argument("--clock", type=float, nargs="?", const=100.0, default=0.0, metavar="HZ",
                   help="publish /clock (bag time) at HZ (default 100) for use_sim_time")
    p.add_argument("--topics", nargs="*", default=None, help="play only these topics")
    p.add_argument("--wait-for-subscribers", type=int, default=0, metavar="N",
                   help="before the first message, wait until each topic (or --wait-topics) "
                   "has N matched subscribers")
    p.add_argument("--wait-topics", nargs="*", default=None, help="topics to wait on")
    p.add_argument("--wait-timeout", type=float, default=30.0)
    p.add_argument("--qos", choices=("recorded", "reliable", "best_effort"), default="recorded",
                   help="QoS offered per topic (default: what the bag recorded)")
    p.add_argument("--domain-id", type=int, default=None)
    p.set_defaults(func=lambda a: play(PlayOptions(
        bag=Path(a.bag), rate=a.rate, loop=a.loop, start_offset=a.start_offset,
        start_paused=a.start_paused, resume_after=a.resume_after, clock=a.clock,
        topics=a.topics, wait_for_subscribers=a.wait_for_subscribers,
        wait_topics=a.wait_topics, wait_timeout=a.wait_timeout, qos=a.qos,
        domain_id=a.domain_id)))
