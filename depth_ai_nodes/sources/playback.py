"""RealSense recordings (.bag ROS 1 layout, .db3 rosbag2) played as if a camera.

pyrealsense2 plays the file through an ordinary pipeline, so serial, depth
units, intrinsics and extrinsics are the recorded device's, and frames go
through the same conversion and filter chain as a live camera (realsense.py).
End of file shows up as a wait timeout; the playback status then says
`stopped`, and the source reports ENDED, or, with `loop`, reopens the file
(librealsense's own repeat_playback stalls on some .bag files and pairs the
last frames of one pass with the first of the next). Streams absent from the file (the D435 test recording has no
IR) are simply absent from every Frameset.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from depth_ai_nodes.sources.base import ENDED, STREAMING, Frameset, SourceError
from depth_ai_nodes.sources.realsense import PipelineSource, StreamSettings, _rs

SUFFIXES = (".bag", ".db3")


class PlaybackSource(PipelineSource):
    """A .bag/.db3 recording: real time or as fast as possible, loop or end."""

    def __init__(self, path: str | Path, streams: StreamSettings | None = None,
                 real_time: bool = True, loop: bool = False) -> None:
        super().__init__(streams or StreamSettings())
        self.path = Path(path).expanduser()
        self.real_time = real_time
        self.loop = loop
        self._playback: Any = None
        self.loops = 0

    def _config(self) -> Any:
        if not str(self.path) or str(self.path) == ".":
            raise SourceError("source:=file needs file_path:=<recording.bag|.db3>")
        if not self.path.is_file():
            raise SourceError(f"file_path {str(self.path)!r} does not exist; give the path of "
                              f"a RealSense recording (.bag or .db3)")
        if self.path.suffix.lower() not in SUFFIXES:
            raise SourceError(f"file_path {str(self.path)!r} is not a RealSense recording; "
                              f"expected a .bag or .db3 file")
        cfg = _rs().config()
        # Looping restarts the pipeline at the end of the file: librealsense's own
        # repeat_playback stalls on some .bag files and pairs frames of two passes.
        cfg.enable_device_from_file(str(self.path), repeat_playback=False)
        return cfg

    def _start_error(self, err: Exception) -> str:
        return (f"cannot play {str(self.path)!r} as a RealSense recording ({err}); record it "
                f"with the RealSense Viewer, rs-record or pyrealsense2's rs.recorder")

    def _before_start(self, cfg: Any, pipeline: Any) -> None:
        # A file without depth is refused from its resolved profile, before playback
        # starts: stopping a playback pipeline that has just begun reading can abort
        # the process inside librealsense (seen once in CI).
        rs = _rs()
        try:
            resolved = cfg.resolve(rs.pipeline_wrapper(pipeline))
        except RuntimeError as err:
            raise SourceError(self._start_error(err)) from err
        streams = {s.stream_type() for s in resolved.get_streams()}
        if rs.stream.depth not in streams:
            raise SourceError(f"{str(self.path)!r} has no depth stream; camera_node needs one "
                              f"(streams in the file: {sorted(str(s) for s in streams)})")

    def _after_start(self, profile: Any) -> None:
        self._playback = profile.get_device().as_playback()
        self._playback.set_real_time(bool(self.real_time))
        self.info.setdefault("file", str(self.path))

    def _close(self) -> None:
        super()._close()
        self._playback = None

    def read(self, timeout: float) -> Frameset | None:
        if self.state != STREAMING or self._pipeline is None:
            time.sleep(min(timeout, 0.05))
            return None
        deadline = time.monotonic() + timeout
        while True:  # short waits, so the end of the file is noticed within ~50 ms
            fs = self._grab(min(0.05, max(0.001, deadline - time.monotonic())))
            if fs is not None:
                return fs
            if self._playback.current_status() == _rs().playback_status.stopped:
                if not self.loop:
                    self.state = ENDED
                    return None
                self._close()
                self._open()
                self.loops += 1
            if time.monotonic() >= deadline:
                return None
