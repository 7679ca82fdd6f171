"""Two "hosts" on one machine for multi-host tests and benchmarks (root only).

Two network namespaces ("robot" and "server") joined by a veth pair with their own addresses,
each process started in one with its own private /dev/shm (so Fast DDS cannot take a shared-
memory shortcut between them), and optional packet loss on the link: an nftables ingress rule
`numgen random mod 100 < loss drop` in each namespace (this kernel has no netem).
Needs root, iproute2 and nftables.

The namespaces have fixed names, so only one user may hold them at a time: setup() takes an
exclusive lock (LOCK_FILE, flock) that teardown() gives back, and a second user (a benchmark
started while the CI test runs, say) waits for it. Without the lock each one's setup and
teardown deleted the other's link in mid-run: a reliable publisher there stalled, received ~0
and published less, as in the large-message runs that collapsed in stop 24 (bench/RESULTS.md).
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

NS = ("dai_robot", "dai_server")
ADDR = {"dai_robot": "192.168.77.1/24", "dai_server": "192.168.77.2/24"}
DEV = {"dai_robot": "dai_r0", "dai_server": "dai_s0"}
LOCK_FILE = (Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")) / "depth_ai_netns_hosts.lock"
_held: int | None = None  # this process's open lock file while it holds the namespaces
# the runner's closing summary and its periodic status rows
SUMMARY = re.compile(r"summary (\S+): (\d+) messages, mean ([\d.]+) Hz.*?latency median ([\d.na]+) ms")
STATUS = re.compile(r"status (/\S+)\s+([\d.]+|-) /\s+\S+ Hz\s+\S+\s+\d+\s+(\d+)\s+(\w+)")


def unavailable() -> str | None:
    """Why two hosts cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nft", "unshare"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian: iproute2, nftables, util-linux)"
    name = f"dai_probe{os.getpid()}"  # per process: two probing at once must not collide
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    if probe.returncode != 0:
        return f"cannot create network namespaces here: {probe.stderr.strip()}"
    return None


def _sh(*cmd: str) -> None:
    done = subprocess.run(list(cmd), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")


def _lock(wait_s: float) -> None:
    """Take the namespaces' lock (held until teardown), waiting up to wait_s for another user."""
    global _held
    if _held is not None:
        return
    fd = os.open(LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    deadline, told = time.monotonic() + wait_s, False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise RuntimeError(f"another process holds the two test hosts ({NS[0]}, {NS[1]}; lock "
                                   f"{LOCK_FILE}) after {wait_s:g} s: let it finish, or end it") from None
            if not told:
                print(f"waiting for another process to give back the two test hosts ({LOCK_FILE})",
                      file=sys.stderr, flush=True)
                told = True
            time.sleep(0.2)
    _held = fd


def _unlock() -> None:
    global _held
    if _held is not None:
        fcntl.flock(_held, fcntl.LOCK_UN)
        os.close(_held)
        _held = None


def _delete_namespaces() -> None:
    for ns in NS:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def setup(loss_percent: int, wait_s: float = 900.0) -> None:
    """The two namespaces and the link; loss_percent of the frames dropped in each direction.
    Waits up to wait_s for another user of the namespaces to finish (RuntimeError after)."""
    _lock(wait_s)
    try:
        _create(loss_percent)
    except BaseException:
        teardown()
        raise


def _create(loss_percent: int) -> None:
    _delete_namespaces()  # left over from a run that was killed (we hold the lock: not in use)
    for ns in NS:
        _sh("ip", "netns", "add", ns)
    _sh("ip", "link", "add", DEV[NS[0]], "type", "veth", "peer", "name", DEV[NS[1]])
    for ns in NS:
        _sh("ip", "link", "set", DEV[ns], "netns", ns)
        _sh("ip", "-n", ns, "addr", "add", ADDR[ns], "dev", DEV[ns])
        _sh("ip", "-n", ns, "link", "set", DEV[ns], "up")
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", DEV[ns])
        if loss_percent > 0:
            nft = ("ip", "netns", "exec", ns, "nft")
            _sh(*nft, "add", "table", "netdev", "lossy")
            _sh(*nft, f"add chain netdev lossy in {{ type filter hook ingress device {DEV[ns]} priority 0; }}")
            _sh(*nft, "add", "rule", "netdev", "lossy", "in", "numgen", "random", "mod", "100", "<",
                str(loss_percent), "drop")


def teardown() -> None:
    """Deletes the namespaces and gives the lock back."""
    _delete_namespaces()
    _unlock()


def host_command(ns: str, args: list[str]) -> list[str]:
    """`args` run in namespace `ns` with a private /dev/shm (a separate host)."""
    inner = "mount -t tmpfs tmpfs /dev/shm && exec " + " ".join(args)
    return ["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-c", inner]


def runner_rates(log: str) -> dict[str, float]:
    """Mean rate per topic from a `depth-ai run` closing summary (first to last message)."""
    return {m.group(1): float(m.group(3)) for m in SUMMARY.finditer(log)}


def runner_latencies(log: str) -> dict[str, float]:
    """Median latency (ms, header stamp -> received by the runner) per topic from the summary."""
    return {m.group(1): float(m.group(4)) for m in SUMMARY.finditer(log)}


def runner_cpu(log: str) -> dict[str, float]:
    """Per node, its CPU after warm-up (% of one core) from a `depth-ai run` closing summary."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"summary CPU (\S+): ([\d.]+) % of one core", log)}


def probe_gaps(log: str) -> dict[str, float]:
    """Per topic, the longest silence (s) between two messages from test/stream_probe.py's summary."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"summary (\S+): .* longest gap ([\d.]+) s", log)}


def probe_bandwidth(log: str) -> dict[str, float]:
    """Per topic, MB/s of message data received, from test/stream_probe.py's summary."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"summary (\S+): .* Hz, ([\d.]+) MB/s", log)}


def stalls(log: str, topics: list[str]) -> dict[str, int]:
    """Per topic, how many periodic status rows after its first message said STALE (no message
    for 3 s or 5 periods): a stream that stopped."""
    out = {t: 0 for t in topics}
    for m in STATUS.finditer(log):
        topic, count, state = m.group(1), int(m.group(3)), m.group(4)
        if topic in out and count > 0 and state == "STALE":
            out[topic] += 1
    return out


def depth_ai_exe(python: str) -> str:
    return shutil.which("depth-ai", path=str(Path(python).parent)) or "depth-ai"


def host_cpus() -> tuple[str, str] | None:
    """CPU lists for taskset giving the robot and the server their own cores (the first and
    the second half of this machine's), as two real hosts have; None with a single core."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None
    half = len(cpus) // 2
    return ",".join(map(str, cpus[:half])), ",".join(map(str, cpus[half:]))


def run_split(python: str, seconds: float, loss_percent: int, domain: int, params_yaml: str,
              logs: Path, cpus: tuple[str, str] | None = None, one_host: bool = False,
              extra_args: tuple[str, ...] = (), server_command: list[str] | None = None,
              observe_diagnostics: bool = False) -> str:
    """The pipeline split across the two hosts: `depth-ai run --only camera,lidar --multi-host`
    on the robot, `--only inference,fusion --multi-host` on the server for `seconds`; returns the
    server runner's output (its status rows and closing summary).

    cpus: taskset CPU lists of the robot and the server (host_cpus()), so the network's CPU
    cost lands on each side's own cores as between real hosts; None: both share every core.
    one_host: the same two runners on this host (shared memory between them, no link): the
    reference for "a clean link as on one host". server_command: run this on the server instead
    of the inference and fusion runner (e.g. a subscriber counting what crosses the link).
    observe_diagnostics: the server's runner without its monitor, its nodes' rates read from
    /diagnostics (test/diag_observer.py, same summary format)."""
    if not one_host:
        setup(loss_percent)
    exe = depth_ai_exe(python)
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "params.yaml").write_text(params_yaml)
    common = ["--multi-host", "--no-preview", "--status-period", "2", "--domain-id", str(domain),
              "--params-file", str(logs / "params.yaml"), *extra_args]

    def command(side: int, args: list[str]) -> list[str]:
        pinned = ["taskset", "-c", cpus[side], *args] if cpus else args
        return pinned if one_host else host_command(NS[side], pinned)

    robot_out, server_out = logs / "robot.out", logs / "server.out"
    with open(robot_out, "w") as r_log, open(server_out, "w") as s_log:
        # the robot's runner only supervises (--no-monitor), as on a small edge computer: subscribing
        # to every image and scan it sends took a third of its core at 640x480@30 + 128x2048
        robot = subprocess.Popen(command(0, [exe, "run", "--only", "camera,lidar", "--no-monitor", "--duration",
                                             str(seconds + 15), "--log-dir", str(logs / "robot"), *common]),
                                 stdout=r_log, stderr=subprocess.STDOUT)
        serve = [exe, "run", "--only", "inference,fusion", "--log-dir", str(logs / "server"), *common]
        if observe_diagnostics:
            serve = [python, str(Path(__file__).resolve().parent / "diag_observer.py"), str(seconds),
                     "--domain-id", str(domain), "--", *serve]
        else:
            serve += ["--duration", str(seconds)]
        server = subprocess.Popen(command(1, server_command or serve),
                                  stdout=s_log, stderr=subprocess.STDOUT)
        try:
            server.wait(timeout=seconds + 120)
        finally:
            for proc in (server, robot):
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            if not one_host:
                teardown()
    return server_out.read_text(errors="replace")
