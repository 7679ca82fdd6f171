"""The two test hosts are one user's at a time: a second setup waits and never deletes the
first user's link (root only, like the multi-host tests)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netns_hosts as hosts  # noqa: E402

WHY = hosts.unavailable()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"two test hosts: {WHY}")

HOLDER = """
import sys
sys.path.insert(0, {here!r})
import netns_hosts as hosts
hosts.setup(0)
print("ready", flush=True)
sys.stdin.read()  # until the test closes our stdin
hosts.teardown()
"""


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def test_a_second_user_waits_for_the_hosts_and_leaves_the_first_users_link_alone():
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(here=str(Path(__file__).resolve().parent))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert set(hosts.NS) <= _namespaces()
        with pytest.raises(RuntimeError, match="another process holds the two test hosts"):
            hosts.setup(0, wait_s=0.5)
        assert set(hosts.NS) <= _namespaces(), "the refused setup deleted the holder's namespaces"
        if shutil.which("ping"):  # the link the holder made still carries packets
            ping = subprocess.run(["ip", "netns", "exec", hosts.NS[0], "ping", "-c", "1", "-W", "2",
                                   hosts.ADDR[hosts.NS[1]].split("/")[0]], capture_output=True, text=True)
            assert ping.returncode == 0, ping.stdout + ping.stderr
        holder.stdin.close()  # the holder tears down; a patient setup then gets the hosts
        hosts.setup(0, wait_s=30)
        try:
            assert set(hosts.NS) <= _namespaces()
        finally:
            hosts.teardown()
        assert not set(hosts.NS) & _namespaces()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=10)
