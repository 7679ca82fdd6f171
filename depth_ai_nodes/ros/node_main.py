"""Start-up and shut-down shared by every node's console script.

- A ConfigError raised while the node is built (bad parameter, missing file,
  absent execution provider, ...) prints "<node>: configuration error: <what to
  fix>" and exits 2, before anything is published.
- SIGINT and SIGTERM shut down cleanly (exit 0), so Fast DDS removes its
  /dev/shm segments; launch and our runner stop nodes with SIGINT. A SIGINT that
  arrives while the node is still being built (a launch stopped at once) too, whether
  it surfaces as KeyboardInterrupt or as the next entity failing on the shut-down context.
- glibc malloc is tuned for large messages (halves subscriber CPU per image).
- Fast DDS shared-memory files left in /dev/shm by processes that died (kill -9, a
  crash) are removed before the node joins DDS; files any live process maps, or
  created in the last few seconds, are never touched.
- When the kernel caps UDP socket buffers below what the DDS profile asks for (the
  multi-host profile on a stock Linux), one warning says so and how to lift the cap.
- Callbacks run on the executor ros/executor.py picks (rclpy's EventsExecutor by default).
"""
from __future__ import annotations

import ctypes
import signal
import sys
import time
from typing import Any, Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from depth_ai_nodes.ros.executor import make_executor

EXIT_CONFIG_ERROR = 2


class ConfigError(Exception):
    """A start-up configuration problem; the message says what to fix."""


def tune_malloc() -> None:
    """mallopt(M_MMAP_THRESHOLD, 32 MiB), mallopt(M_TRIM_THRESHOLD, 256 MiB)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)   # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 * 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def run_node(factory: Callable[[], Node], args: Sequence[str] | None = None,
             threads: int = 1) -> int:
    """rclpy.init, build the node with `factory`, spin until SIGINT/SIGTERM.

    Returns the process exit code: 0 on a clean stop, 2 on ConfigError."""
    tune_malloc()
    removed = _clean_shm()
    rclpy.init(args=list(sys.argv if args is None else args))
    name = "node"
    node: Node | None = None
    try:
        try:
            executor, spin = make_executor(threads)
        except ValueError as err:  # DEPTH_AI_EXECUTOR names no executor
            print(f"[{_guess_name(factory)}] configuration error: {err}", file=sys.stderr, flush=True)
            return EXIT_CONFIG_ERROR
        try:
            node = factory()
        except ConfigError as err:
            print(f"[{_guess_name(factory)}] configuration error: {err}", file=sys.stderr,
                  flush=True)
            return EXIT_CONFIG_ERROR
        except Exception:
            # SIGINT/SIGTERM shut the context down while the node was being built: its next
            # publisher or timer fails (InvalidHandle, RCLError) before the KeyboardInterrupt
            # arrives. A clean stop too; anything else is a real error.
            if not _context_going_down(STOP_GRACE_S):
                raise
            return 0
        name = node.get_name()
        if removed:
            node.get_logger().info(f"removed {removed} Fast DDS shared-memory file(s) left in /dev/shm "
                                   f"by processes that no longer exist")
        shortfall = _socket_buffer_shortfall()
        if shortfall:
            node.get_logger().warn(shortfall)
        signal.signal(signal.SIGTERM, lambda *_: _request_shutdown())
        executor.add_node(node)
        try:
            spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            # rclpy can fail to take a message while SIGINT/SIGTERM tears the context down
            # (a pybind conversion error in take_message, or in the EventsExecutor's
            # spin_once): a clean stop, not a crash. rclpy's signal handler shuts the context
            # down from its own thread, so the failure can come a moment before rclpy.ok()
            # turns False: wait a little for it
            if not _context_going_down(STOP_GRACE_S):
                raise
        finally:
            # callbacks detached before the node's entities go (the EventsExecutor registers
            # them with the middleware itself)
            executor.shutdown()
        return 0
    except KeyboardInterrupt:  # SIGINT while the node was being built or set up: a clean stop too
        return 0
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as err:  # never mask the exit path
                    print(f"[{name}] error while closing: {err}", file=sys.stderr)
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()


STOP_GRACE_S = 1.0


def _context_going_down(grace_s: float) -> bool:
    """Whether rclpy's context is shut down now or within grace_s (a signal being handled)."""
    deadline = time.monotonic() + grace_s
    while rclpy.ok():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def announce_first_compile(node: Node, modules: Sequence[Any]) -> None:
    """One log line when this start will compile numba kernels (a fresh install): the node
    is not dead, and says how long to wait."""
    from depth_ai_nodes.core.jit import FIRST_START_SECONDS, uncompiled

    try:
        cold = uncompiled(modules)
    except Exception:  # never let the announcement stop a start
        return
    if cold:
        node.get_logger().warn(f"first start after install: compiling the numba kernels of {', '.join(cold)} "
                               f"(about {FIRST_START_SECONDS}; cached for every later start, which "
                               f"takes about a second; `python -m depth_ai_nodes.precompile` "
                               f"compiles them ahead)")


def _clean_shm() -> int:
    """Stale Fast DDS /dev/shm files of dead processes (never a live one's); 0 on any problem."""
    try:
        from depth_ai_nodes.ros.dds import clean_stale_fastdds_shm

        return len(clean_stale_fastdds_shm(min_age_s=STALE_SHM_MIN_AGE_S))
    except Exception:  # housekeeping must never stop a node from starting
        return 0


def _socket_buffer_shortfall() -> str | None:
    """ros.dds.socket_buffer_shortfall for the active profile; None on any problem."""
    try:
        from depth_ai_nodes.ros.dds import socket_buffer_shortfall

        return socket_buffer_shortfall()
    except Exception:  # a diagnosis must never stop a node from starting
        return None


STALE_SHM_MIN_AGE_S = 5.0


def _request_shutdown() -> None:
    rclpy.try_shutdown()


def _guess_name(factory: Callable[[], Node]) -> str:
    return getattr(factory, "__name__", "node")
