"""Why an input was refused: a small fixed set of categories, ROS-free.

Every message a node receives becomes validated core data or a `Rejected` carrying one
`Reason` and a human-readable detail. Nodes count rejections per reason in /diagnostics
and log once per reason per few seconds with the latest detail, so the categories must
stay few and stable (monitoring keys on them) while the detail may say anything.
"""
from __future__ import annotations

from enum import Enum

__all__ = ["Reason", "Rejected"]


class Reason(str, Enum):
    MALFORMED = "malformed"          # the buffer disagrees with its own description (sizes, offsets, step)
    UNSUPPORTED = "unsupported"      # well-formed, but not what this input takes (encoding, field count/type)
    NON_FINITE = "non_finite"        # NaN / Inf where numbers must be finite
    OUT_OF_RANGE = "out_of_range"    # finite but physically absurd (negative focal length, 1 km/s)
    MISMATCH = "mismatch"            # disagrees with its companion (image size vs camera_info)
    BAD_STAMP = "bad_stamp"          # far from the node's clock
    EMPTY = "empty"                  # nothing in it (0 points, 0x0 image)

    def __str__(self) -> str:
        return self.value


class Rejected(ValueError):
    """An input refused at the boundary, with its category and what exactly was wrong."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
