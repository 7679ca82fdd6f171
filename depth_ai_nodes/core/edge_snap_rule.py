"""The edge snap's numbers and their check (core/edge_snap.py runs the rule), importable
without numba so that the command-line tools' start and `--help` stay fast."""
from __future__ import annotations

EDGE_SPAN = 0.2     # farthest / nearest - 1 above which a window holds a depth edge
TOLERANCE = 0.1     # a fill this close (relative) to a side belongs to that side
# The shipped window side (node, `depth-ai infer`, `depth-ai eval`): the lowest RMSE on the
# held-out rgbd-train split among 7-13 px with the closer-side rule (bench/RESULTS.md,
# 2026-12-07 evening)
DEFAULT_WINDOW = 9


def check_window(window: int) -> int:
    """The window side in pixels: 0 (off) or an odd number >= 3."""
    w = int(window)
    if w != 0 and (w < 3 or w % 2 == 0):
        raise ValueError(f"edge snap window must be 0 (off) or an odd number of pixels >= 3; got {window}")
    return w
