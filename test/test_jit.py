"""A first start after install compiles numba kernels for tens of seconds: the node says so in
one log line (core/jit.py, ros/node_main.announce_first_compile) instead of looking dead."""
from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

from depth_ai_nodes.core.jit import uncompiled
from depth_ai_nodes.ros.node_main import announce_first_compile


def test_a_module_whose_kernels_were_never_cached_is_announced_once_and_not_after(tmp_path, monkeypatch):
    (tmp_path / "fresh_kernels_mod.py").write_text(
        "from numba import njit\n\n@njit(cache=True)\ndef inc(x):\n    return x + 1\n\n"
        "@njit(cache=True)\ndef helper(x):\n    return x * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("fresh_kernels_mod")
    lines: list[str] = []
    node = SimpleNamespace(get_logger=lambda: SimpleNamespace(warn=lines.append))
    assert uncompiled([mod]) == ["fresh_kernels_mod"]
    announce_first_compile(node, [mod])
    assert len(lines) == 1 and "first start after install" in lines[0] and "fresh_kernels_mod" in lines[0]
    mod.inc(1)  # compiled and cached: one kernel with an index is enough (helpers never get one)
    assert uncompiled([mod]) == []
    announce_first_compile(node, [mod])
    assert len(lines) == 1
    sys.modules.pop("fresh_kernels_mod", None)


def test_the_set_up_leaves_the_nodes_kernels_compiled():
    """scripts/dev warms these up: a node start then has nothing to announce."""
    from depth_ai_nodes.core import registration
    from depth_ai_nodes.core.scene import kernels

    assert uncompiled([registration, kernels]) == []
