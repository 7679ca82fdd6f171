"""The large-message DDS set-up our runners and tests apply, and /dev/shm hygiene.

Default Fast DDS transports lose large best-effort images between processes
(platform-facts.md); config/fastdds_large_data.xml fixes that. glibc malloc
tuning halves subscriber CPU per large message. Both must be in a process's
environment before rclpy.init, so runners set them for the processes they start.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from depth_ai_nodes.resources import config_path

PROFILE_NAME = "fastdds_large_data.xml"
MULTI_HOST_PROFILE_NAME = "fastdds_multi_host.xml"
SHM_DIR = Path("/dev/shm")

# Keep large message buffers out of mmap/munmap churn (see platform-facts.md).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "268435456"}


def dds_environment(base: Mapping[str, str] | None = None, *, profile: bool = True,
                    localhost_only: bool = True, multi_host: bool = False) -> dict[str, str]:
    """Environment for a ROS process: the shipped SHM profile (unless the user set
    one), loopback discovery, malloc tuning. Values already in `base` win.
    multi_host: the profile for a pipeline split across machines (shared memory on one
    host, MTU-sized UDP fragments between hosts) and discovery on the local network."""
    env = dict(os.environ if base is None else base)
    if multi_host:
        # what the single-host set-up exported (`eval "$(depth-ai env)"`) would confine this
        # process to one machine: replaced; a profile of the user's own is kept
        if Path(env.get("FASTDDS_DEFAULT_PROFILES_FILE", "")).name == PROFILE_NAME:
            del env["FASTDDS_DEFAULT_PROFILES_FILE"]
        if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST":
            del env["ROS_AUTOMATIC_DISCOVERY_RANGE"]
    if profile:
        name = MULTI_HOST_PROFILE_NAME if multi_host else PROFILE_NAME
        env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_path(name)))
        env.setdefault("RMW_FASTRTPS_USE_QOS_FROM_XML", "0")
    if multi_host:
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
    elif localhost_only:
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    for key, value in MALLOC_ENV.items():
        env.setdefault(key, value)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# The kernel's caps on the socket buffers a process may ask for (setsockopt SO_SNDBUF / SO_RCVBUF);
# a larger request is silently cut to them. Stock Linux: 212992 bytes.
KERNEL_BUFFER_LIMITS = {"receiveBufferSize": Path("/proc/sys/net/core/rmem_max"),
                        "sendBufferSize": Path("/proc/sys/net/core/wmem_max")}
_SYSCTL_NAME = {"receiveBufferSize": "net.core.rmem_max", "sendBufferSize": "net.core.wmem_max"}


def profile_udp_buffers(profile: Path) -> dict[str, int]:
    """The largest socket buffers (receiveBufferSize / sendBufferSize, bytes) a Fast DDS XML
    profile asks for in its UDP transports; empty when it sets none or cannot be read."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(profile).getroot()
    except (OSError, ET.ParseError):
        return {}
    asked: dict[str, int] = {}
    for desc in root.iter():
        if not desc.tag.endswith("transport_descriptor"):
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in desc}
        if not fields.get("type", "").startswith("UDP"):
            continue
        for key in KERNEL_BUFFER_LIMITS:
            if fields.get(key, "").isdigit():
                asked[key] = max(asked.get(key, 0), int(fields[key]))
    return asked


def socket_buffer_shortfall(profile: str | Path | None = None,
                            limits: Mapping[str, int] | None = None) -> str | None:
    """One line when the kernel caps UDP socket buffers below what the Fast DDS profile asks for
    (`profile`: default $FASTDDS_DEFAULT_PROFILES_FILE), with the command that lifts the cap;
    None when it does not, or when either side cannot be read. Linux grants a socket twice the
    size it sets (the other half for bookkeeping), cut to the cap first: a cap of at least half
    the request gives the buffer the profile asks for. The multi-host profile asks for 8 MiB;
    under the stock 208 KiB cap a 4 MB message between hosts arrived 687 ms after its stamp
    instead of 39-45 ms, at 0.80 of its rate, on a clean link; caps of 1 and 4 MiB were within
    ~20 ms of 8 MiB (bench/bench_dds_sample_size.py --kernel-buffers, bench/RESULTS.md).
    `limits`: the caps (receiveBufferSize / sendBufferSize -> bytes) instead of /proc's, for tests."""
    path = profile if profile is not None else os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "")
    if not path:
        return None
    asked = profile_udp_buffers(Path(path))
    short = []
    for key, want in sorted(asked.items()):
        try:
            cap = int(limits[key]) if limits is not None else int(KERNEL_BUFFER_LIMITS[key].read_text())
        except (KeyError, OSError, ValueError):
            continue
        if 2 * cap < want:  # the kernel grants 2 x min(request, cap)
            short.append((key, want, cap))
    if not short:
        return None
    caps = ", ".join(f"{_SYSCTL_NAME[k]} = {cap}" for k, _, cap in short)
    fix = " ".join(f"{_SYSCTL_NAME[k]}={want}" for k, want, _ in short)
    return (f"the kernel caps UDP socket buffers below what {Path(path).name} asks for ({caps}; it asks for "
            f"{max(w for _, w, _ in short)} bytes): large messages between hosts arrive later, the largest at a "
            f"lower rate. Lift the cap on each machine: sudo sysctl -w {fix} "
            f"(to keep it: a file in /etc/sysctl.d)")


def _mapped_shm_files() -> set[str]:
    """Every /dev/shm file some live process has mapped (or open)."""
    used: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            with open(proc / "maps", encoding="utf-8", errors="replace") as maps:
                for line in maps:
                    idx = line.find("/dev/shm/")
                    if idx >= 0:
                        used.add(line[idx:].split(" (deleted)")[0].strip())
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("/dev/shm/"):
                    used.add(target)
        except OSError:
            continue
    return used


def fastdds_shm_files() -> list[Path]:
    """Fast DDS segments, port files and their semaphores in /dev/shm."""
    if not SHM_DIR.is_dir():
        return []
    return sorted(p for p in SHM_DIR.iterdir()
                  if p.name.startswith(("fastdds_", "sem.fastdds_")))


def _age_s(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_ctime
    except OSError:
        return 0.0


def stale_fastdds_shm(min_age_s: float = 0.0) -> list[Path]:
    """Fast DDS /dev/shm files that no live process maps: left by unclean exits.

    Segments and port files stay mapped while their participant lives; a port's
    named semaphore (sem.fastdds_portN_mutex) is not, so it counts as stale
    only when its port file is stale or gone. `min_age_s` spares files created
    that recently: a participant starting right now creates its segment a moment
    before it maps it, and a node starting beside it must not take that moment
    for death."""
    import time

    now = time.time()
    used = _mapped_shm_files()
    files = fastdds_shm_files()
    stale = {p for p in files if not p.name.startswith("sem.") and str(p) not in used
             and _age_s(p, now) >= min_age_s}
    for p in files:
        if p.name.startswith("sem."):
            port = SHM_DIR / p.name[len("sem."):].removesuffix("_mutex")
            if port in stale or not port.exists():
                stale.add(p)
    return sorted(stale)


def clean_stale_fastdds_shm(min_age_s: float = 0.0) -> list[Path]:
    """Remove Fast DDS segments of dead processes; never touches live ones."""
    removed = []
    for path in stale_fastdds_shm(min_age_s):
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed
