"""Image files as a camera: colour (+ depth, + IR) from folders or globs, ROS-free.

Bring your own data without writing a publisher:
- colour: any image Pillow reads; depth (optional): 16-bit PNG in units of `depth_scale`
  metres (0 invalid), 32-bit float TIFF or .npy in metres (0 / NaN invalid); IR (optional):
  8- or 16-bit grey.
- Depth and IR are taken as registered to the colour image (the layout of TUM, NYU, SUN
  RGB-D, KITTI depth): one camera model serves all three, depth -> colour is the identity.
- Pairing: by a list file (`list`: lines "colour [depth [ir]]", paths relative to the list),
  else by name: the file stem without a colour / depth / IR word (000001_color.jpg pairs with
  000001_depth.png; image_2/000000.png with depth/000000.png).
- Calibration: a ROS camera_info YAML (camera_calibration's format), a KITTI calib.txt (K of
  P<kitti_camera>), or fx, fy, cx, cy given directly.
- Stamps: a timestamps file (one time in seconds per frame, or "time name" lines as TUM's
  rgb.txt) paced by its differences, else now at `fps`; `loop` starts over (fresh stamps).
"""
from __future__ import annotations

import glob as globlib
import re
import time
from decimal import Decimal, InvalidOperation
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth_ai_nodes.core.camera_model import CameraModel
from depth_ai_nodes.core.transforms import RigidTransform
from depth_ai_nodes.sources.base import ENDED, STARTING, STOPPED, STREAMING, Frameset, SourceError

_ROLE_WORDS = re.compile(r"([_\-.]?(color|colour|rgb|image|img|depth|ir|infrared|infra1|mono|gray|grey))+$",
                         re.IGNORECASE)
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".npy")


def pairing_key(path: Path) -> str:
    """The frame key of a file name: its stem without a trailing role word."""
    stem = path.stem
    key = _ROLE_WORDS.sub("", stem)
    return key or stem


def expand(pattern: str) -> list[Path]:
    """A folder (its image files) or a glob, sorted."""
    p = Path(pattern).expanduser()
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXT)
    return sorted(Path(f) for f in globlib.glob(str(p)) if Path(f).suffix.lower() in IMAGE_EXT)


def read_color(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def read_depth_m(path: Path, depth_scale: float) -> np.ndarray:
    """float32 metres, 0 invalid."""
    if path.suffix.lower() == ".npy":
        d = np.load(path).astype(np.float32)
    else:
        from PIL import Image

        with Image.open(path) as im:
            raw = np.asarray(im)
        if raw.dtype.kind == "f":
            d = raw.astype(np.float32)
        elif raw.dtype in (np.uint16, np.int32, np.uint32, np.int16) or im.mode.startswith("I"):
            d = raw.astype(np.float32) * np.float32(depth_scale)
        else:
            raise SourceError(f"images: {path} is {raw.dtype} {im.mode}; depth must be 16-bit PNG, float "
                              f"TIFF or .npy")
    if d.ndim != 2:
        raise SourceError(f"images: depth {path} has shape {d.shape}; a single channel is needed")
    d[~np.isfinite(d)] = 0.0
    return d


def read_ir(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im)
    if a.ndim == 3:
        a = np.asarray(Image.fromarray(a).convert("L"))
    if a.dtype != np.uint8:
        a = (a.astype(np.uint32) >> 8).astype(np.uint8) if a.max(initial=0) > 255 else a.astype(np.uint8)
    return np.ascontiguousarray(a)


# --- calibration ---------------------------------------------------------------------------------
def camera_info_yaml(path: str | Path) -> CameraModel:
    """A camera_calibration / camera_info_manager YAML (image_width, camera_matrix, ...)."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text())
        k = np.asarray(doc["camera_matrix"]["data"], dtype=np.float64).reshape(3, 3)
        d = np.asarray(doc.get("distortion_coefficients", {}).get("data", []) or [], dtype=np.float64)
        return CameraModel(width=int(doc["image_width"]), height=int(doc["image_height"]), K=k, D=d,
                           distortion_model=doc.get("distortion_model", "plumb_bob") or "plumb_bob")
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as err:
        raise SourceError(f"images: cannot read camera_info YAML {path}: {err}") from None


def kitti_model(path: str | Path, camera: int, width: int, height: int) -> CameraModel:
    from depth_ai_nodes.core.calibration import CalibrationError, parse_kitti_calib

    try:
        calib = parse_kitti_calib(path)
    except (OSError, CalibrationError, ValueError) as err:
        raise SourceError(f"images: cannot read KITTI calib {path}: {err}") from None
    if camera not in calib.P:
        raise SourceError(f"images: {path} has no P{camera}")
    return CameraModel(width=width, height=height, K=calib.P[camera][:, :3], D=np.zeros(5))


@dataclass
class ImageSettings:
    color: str
    depth: str = ""
    ir: str = ""
    list_file: str = ""
    depth_scale: float = 0.001
    camera_info: str = ""
    kitti_calib: str = ""
    kitti_camera: int = 2
    intrinsics: tuple[float, ...] = ()   # fx, fy, cx, cy
    fps: float = 10.0
    timestamps: str = ""
    loop: bool = True
    real_time: bool = True


class ImageFolderSource:
    """FrameSource over image files (see the module doc)."""

    def __init__(self, s: ImageSettings) -> None:
        self.s = s
        self.frames = self._pair()
        if not self.frames:
            raise SourceError(f"images: no colour images in {s.color!r} (images.color: a folder or glob)")
        first = read_color(self.frames[0][0])
        h, w = first.shape[:2]
        self.model = self._calibration(w, h)
        if (self.model.width, self.model.height) != (w, h):
            raise SourceError(f"images: the calibration is for {self.model.width}x{self.model.height}, the "
                              f"images are {w}x{h}")
        self.stamps = self._stamps()
        self.fps = float(s.fps) if self.stamps is None or len(self.stamps) < 2 else \
            float(1.0 / max(np.median(np.diff(self.stamps)), 1e-3))
        self.state = STARTING
        self.info = {"name": "image files", "serial": Path(s.color).name or "images", "firmware": "",
                     "fps": f"{s.fps:g}", "frames": str(len(self.frames))}
        self._k = 0
        self._t0 = 0.0

    # -- set-up
    def _pair(self) -> list[tuple[Path, Path | None, Path | None]]:
        s = self.s
        if s.list_file:
            base = Path(s.list_file).expanduser().parent
            out = []
            for line in Path(s.list_file).expanduser().read_text().splitlines():
                parts = line.split("#")[0].split()
                if parts:
                    paths = [base / p for p in parts[:3]] + [None] * (3 - min(3, len(parts)))
                    out.append((paths[0], paths[1], paths[2]))
            return out
        colors = expand(s.color)
        depths = {pairing_key(p): p for p in expand(s.depth)} if s.depth else {}
        irs = {pairing_key(p): p for p in expand(s.ir)} if s.ir else {}
        out = []
        for c in colors:
            key = pairing_key(c)
            d, i = depths.get(key), irs.get(key)
            if (s.depth and d is None) or (s.ir and i is None):
                continue  # a colour image without its depth / IR: not a frameset
            out.append((c, d, i))
        if colors and not out:
            raise SourceError(f"images: no colour image in {s.color!r} has a depth / IR image of the same "
                              f"name in {s.depth!r} / {s.ir!r} (names pair without color/depth/ir words)")
        return out

    def _calibration(self, w: int, h: int) -> CameraModel:
        s = self.s
        if s.camera_info:
            return camera_info_yaml(s.camera_info)
        if s.kitti_calib:
            return kitti_model(s.kitti_calib, s.kitti_camera, w, h)
        if len(s.intrinsics) == 4 and s.intrinsics[0] > 0:
            fx, fy, cx, cy = s.intrinsics
            return CameraModel(width=w, height=h, K=[[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
        raise SourceError("images: no calibration; give images.camera_info (a camera_info YAML), "
                          "images.kitti_calib (calib.txt) or images.intrinsics [fx, fy, cx, cy]")

    def _stamps(self) -> list[float] | None:
        """Frame times in s from the timestamps file (self.stamps_ns: the same, exact)."""
        if not self.s.timestamps:
            return None
        vals = []
        for line in Path(self.s.timestamps).expanduser().read_text().splitlines():
            parts = line.split("#")[0].split()
            if parts:
                try:
                    vals.append(Decimal(parts[0]))  # exact to the nanosecond, unlike a float
                except InvalidOperation:
                    raise SourceError(f"images: timestamps line {line!r} does not start with a time in "
                                      f"seconds") from None
        if len(vals) < len(self.frames):
            raise SourceError(f"images: {len(vals)} timestamps for {len(self.frames)} frames")
        self.stamps_ns = [int(v * 1_000_000_000) for v in vals[: len(self.frames)]]
        return [float(v) for v in vals[: len(self.frames)]]

    # -- FrameSource
    def available_streams(self) -> set[str]:
        first = self.frames[0]
        return {"color"} | ({"depth"} if first[1] is not None else set()) | \
            ({"infra1"} if first[2] is not None else set())

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._k = 0
        self._lap = 0
        self.state = STREAMING

    def _due(self, k: int) -> float:
        if self.stamps is None:
            return k / self.s.fps
        return self.stamps[k] - self.stamps[0]

    def read(self, timeout: float) -> Frameset | None:
        if self.state != STREAMING:
            time.sleep(min(timeout, 0.05))
            return None
        n = len(self.frames)
        if self._k >= n:
            if not self.s.loop:
                self.state = ENDED
                return None
            span = self._due(n - 1) + (1.0 / self.s.fps if self.stamps is None else
                                       float(np.median(np.diff(self.stamps))) if n > 1 else 0.1)
            self._t0 += span
            self._k = 0
            self._lap += 1
        k = self._k
        if self.s.real_time:
            wait = self._t0 + self._due(k) - time.monotonic()
            if wait > timeout:
                time.sleep(timeout)
                return None
            if wait > 0:
                time.sleep(wait)
        self._k += 1
        c, d, i = self.frames[k]
        color = read_color(c)
        depth_mm = None
        if d is not None:
            dm = read_depth_m(d, self.s.depth_scale)
            if dm.shape != color.shape[:2]:
                raise SourceError(f"images: depth {d.name} is {dm.shape[1]}x{dm.shape[0]}, colour is "
                                  f"{color.shape[1]}x{color.shape[0]}; depth must be registered to colour")
            depth_mm = np.clip(np.rint(dm * 1000.0), 0, 65535).astype(np.uint16)
        ir = read_ir(i) if i is not None else None
        if self.stamps is not None and self._lap == 0:
            stamp_ns = self.stamps_ns[k]  # the recording's own time
        else:
            stamp_ns = time.time_ns()
        ident = RigidTransform.identity()
        return Frameset(stamp_ns=stamp_ns, depth=depth_mm, color=color, ir=ir, depth_model=self.model,
                        color_model=self.model, ir_model=self.model, depth_to_color=ident, depth_to_ir=ident,
                        depth_scale=0.001, frame_number=self._lap * n + k,
                        info={**self.info, "file": c.name})

    def stop(self) -> None:
        self.state = STOPPED
