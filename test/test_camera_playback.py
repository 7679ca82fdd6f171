"""pyrealsense2 paths without hardware: a software camera recorded by the test
and played back, the real D435 recording, end of file, reconnect backoff.

Real pyrealsense2 throughout: `rs.software_device` is librealsense's own
virtual camera, `rs.recorder` writes a real .db3 recording, and playback goes
through the same `rs.pipeline` a live camera uses.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2")

from depth_ai_nodes.sources.base import ENDED, RECONNECTING, STREAMING, Backoff, SourceError  # noqa: E402
from depth_ai_nodes.sources.frames import matrix_of  # noqa: E402
from depth_ai_nodes.sources.playback import PlaybackSource  # noqa: E402
from depth_ai_nodes.sources.realsense import (FilterSettings, RealSenseSource,  # noqa: E402
                                              StreamSettings)
from depth_ai_nodes.sources.software_camera import Recording, record  # noqa: E402
from depth_ai_nodes.core.camera_model import CameraModel  # noqa: E402
from depth_ai_nodes.core.transforms import RigidTransform  # noqa: E402

W, H, N_FRAMES = 640, 480, 6
DEPTH_K = (383.5, 383.5, 318.2, 241.7)      # fx, fy, cx, cy
COLOR_K = (612.9, 611.4, 322.3, 238.9)
COLOR_D = [0.12, -0.31, 0.0011, -0.0007, 0.09]
DEPTH_TO_COLOR_T = [0.0148, 0.0002, -0.0003]
SERIAL = "SW0042"


def injected(k: int) -> dict[str, np.ndarray]:
    """Frame k's pixels: distinct per frame, so a received image names its frame."""
    rng = np.random.default_rng(k)
    depth = rng.integers(300, 5000, size=(H, W), dtype=np.uint16)
    depth[k::7, :] = 0  # holes
    ir = rng.integers(0, 256, size=(H, W), dtype=np.uint8)
    color = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    return {"depth": depth, "ir": ir, "color": color}


def model(k: tuple, d=(0.0,) * 5) -> CameraModel:
    fx, fy, cx, cy = k
    return CameraModel(W, H, K=[[fx, 0, cx], [0, fy, cy], [0, 0, 1]], D=d)


def software_camera_spec(serial: str = SERIAL) -> Recording:
    return Recording(depth=model(DEPTH_K), ir=model(DEPTH_K), color=model(COLOR_K, COLOR_D),
                     depth_to_color=RigidTransform(np.eye(3), DEPTH_TO_COLOR_T),
                     fps=30, serial=serial, name="Software RGB-IR-D Camera",
                     firmware="5.16.0.1")


def record_software_camera(path: Path) -> None:
    """A depth + IR + color rs.software_device, recorded by librealsense's rs.recorder."""
    frames = ((p["depth"], p["ir"], p["color"]) for p in map(injected, range(N_FRAMES)))
    assert record(path, software_camera_spec(), frames) == N_FRAMES


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rs") / "software_camera.db3"
    record_software_camera(path)
    assert path.stat().st_size > W * H * 6
    return path


def frame_index(depth: np.ndarray) -> int:
    """Which injected frame this depth image is (-1: none)."""
    for k in range(N_FRAMES):
        if np.array_equal(depth, injected(k)["depth"]):
            return k
    return -1


def rs_aligned(path: Path) -> dict[int, np.ndarray]:
    """rs.align(color) of every recorded frameset, by frame index."""
    pipe, cfg = rs.pipeline(), rs.config()
    cfg.enable_device_from_file(str(path), repeat_playback=False)
    pipe.start(cfg).get_device().as_playback().set_real_time(False)
    align, out = rs.align(rs.stream.color), {}
    try:
        while True:
            ok, frames = pipe.try_wait_for_frames(1000)
            if not ok:
                break
            k = frame_index(np.asanyarray(frames.get_depth_frame().get_data()))
            aligned = align.process(frames).get_depth_frame()
            out[k] = np.asanyarray(aligned.get_data()).copy()
    finally:
        pipe.stop()
    return out


def read_all(source, limit: int = 200, timeout: float = 1.0) -> list:
    out = []
    while source.state == STREAMING and len(out) < limit:
        fs = source.read(timeout)
        if fs is not None:
            out.append(fs)
    return out


# --- ROS-free: the sources themselves ---------------------------------------------------

def test_playback_source_returns_exactly_what_was_recorded(recording):
    source = PlaybackSource(recording, real_time=False, loop=False)
    source.start()
    try:
        framesets = read_all(source)
        assert source.state == ENDED
    finally:
        source.stop()
    assert len(framesets) >= N_FRAMES - 1
    seen = []
    for fs in framesets:
        k = frame_index(fs.depth)
        assert k >= 0, "played depth differs from every injected frame"
        seen.append(k)
        pixels = injected(k)
        assert np.array_equal(fs.ir, pixels["ir"])
        assert np.array_equal(fs.color, pixels["color"])
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    fs = framesets[0]
    assert source.info["serial"] == SERIAL and source.info["firmware"] == "5.16.0.1"
    assert fs.depth_scale == pytest.approx(0.001)
    assert (fs.depth_model.fx, fs.depth_model.fy, fs.depth_model.cx, fs.depth_model.cy) \
        == pytest.approx(DEPTH_K, abs=1e-3)
    assert (fs.color_model.fx, fs.color_model.fy, fs.color_model.cx, fs.color_model.cy) \
        == pytest.approx(COLOR_K, abs=1e-3)
    assert list(np.ravel(fs.color_model.D))[:5] == pytest.approx(COLOR_D, abs=1e-6)
    assert matrix_of(fs.depth_to_color)[:3, 3] == pytest.approx(DEPTH_TO_COLOR_T, abs=1e-6)
    assert np.allclose(matrix_of(fs.depth_to_ir), np.eye(4))


def test_playback_loops_when_asked(recording):
    source = PlaybackSource(recording, real_time=False, loop=True)
    source.start()
    try:
        framesets = read_all(source, limit=3 * N_FRAMES)
    finally:
        source.stop()
    assert len(framesets) == 3 * N_FRAMES and source.state != ENDED
    indices = [frame_index(fs.depth) for fs in framesets]
    assert min(indices) >= 0 and indices.count(indices[-1]) >= 2, indices


def test_decimation_keeps_intrinsics_consistent_with_the_image(recording):
    streams = StreamSettings(filters=FilterSettings(decimation=True, decimation_magnitude=2))
    source = PlaybackSource(recording, streams, real_time=False)
    source.start()
    try:
        fs = next(fs for fs in iter(lambda: source.read(2.0), "x") if fs is not None)
    finally:
        source.stop()
    assert fs.depth.shape == (H // 2, W // 2)
    assert (fs.depth_model.width, fs.depth_model.height) == (W // 2, H // 2)
    assert fs.depth_model.fx == pytest.approx(DEPTH_K[0] / 2, rel=1e-3)
    assert fs.color.shape == (H, W, 3)  # decimation is depth-only


@pytest.mark.parametrize("path, expected", [
    ("/nonexistent/recording.bag", "does not exist"),
    (__file__, "not a RealSense recording"),
], ids=["missing", "not-a-recording"])
def test_playback_config_errors_say_what_to_fix(path, expected):
    with pytest.raises(SourceError, match=expected):
        PlaybackSource(path).start()


def test_no_camera_is_a_clear_error():
    if len(rs.context().query_devices()):
        pytest.skip("a RealSense camera is connected")
    with pytest.raises(SourceError, match="no RealSense device connected"):
        RealSenseSource(StreamSettings()).start()


def test_backoff_doubles_up_to_its_cap():
    now = [0.0]
    backoff = Backoff(initial_s=0.5, max_s=4.0, clock=lambda: now[0])
    delays = [backoff.failed() for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert not backoff.due()
    now[0] += 4.0
    assert backoff.due()
    backoff.reset()
    assert backoff.delay_s == 0.5 and backoff.attempts == 0


def test_lost_camera_retries_with_backoff_and_resumes():
    """The reconnect state machine on a real RealSenseSource. With no camera
    here, every reconnect attempt is a real librealsense failure ("no device");
    success is simulated by letting the open succeed after three attempts
    (an unplug cannot be simulated honestly without hardware)."""
    if len(rs.context().query_devices()):
        pytest.skip("a RealSense camera is connected")
    now = [100.0]
    attempts = []

    class Recovering(RealSenseSource):
        def _open(self):
            attempts.append(now[0])
            if len(attempts) <= 3:
                return super()._open()  # real failure: no device connected
            self._pipeline = object()   # "reconnected"

    source = Recovering(StreamSettings(), backoff=Backoff(0.5, 8.0, clock=lambda: now[0]))
    source.state = STREAMING
    source.lose("test: device removed")
    assert source.state == RECONNECTING
    for _ in range(40):
        t0 = time.monotonic()
        assert source.read(0.01) is None
        assert time.monotonic() - t0 < 0.5, "read() must not block past its timeout"
        if source.state == STREAMING:
            break
        now[0] += 0.25
    assert source.state == STREAMING
    assert len(attempts) == 4
    gaps = np.diff(attempts)
    assert list(gaps) == pytest.approx([0.5, 1.0, 2.0], abs=0.26), gaps
    assert "RealSense" in source.last_error or "device" in source.last_error


def test_numpy_filters_match_librealsense(recording):
    """The synthetic source's decimation/threshold equal librealsense's, pixel for pixel."""
    from depth_ai_nodes.sources.filters import decimate_depth, threshold_depth

    pipe, cfg = rs.pipeline(), rs.config()
    cfg.enable_device_from_file(str(recording), repeat_playback=False)
    pipe.start(cfg).get_device().as_playback().set_real_time(False)
    try:
        ok, frames = pipe.try_wait_for_frames(2000)
        assert ok
        depth = frames.get_depth_frame()
        raw = np.asanyarray(depth.get_data()).copy()
        for m in range(2, 9):
            dec = rs.decimation_filter()
            dec.set_option(rs.option.filter_magnitude, m)
            theirs = np.asanyarray(dec.process(depth).get_data())
            assert np.array_equal(decimate_depth(raw, m), theirs), f"magnitude {m}"
        thr = rs.threshold_filter()
        thr.set_option(rs.option.min_distance, 0.8)
        thr.set_option(rs.option.max_distance, 3.1)
        assert np.array_equal(threshold_depth(raw, 0.001, 0.8, 3.1),
                              np.asanyarray(thr.process(depth).get_data()))
    finally:
        pipe.stop()


# --- through the node, across processes ---------------------------------------------------

def _node_and_collect(ros_node, params, topics, count, timeout=40.0):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from harness import NodeProcess, collect, spin_until

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    with NodeProcess.node("camera_node", {"source": "file", **params}) as node:
        spin_until(ros_node, lambda: not node.alive() or ros_node.count_publishers(
            "/camera/depth/image_rect_raw") > 0, 30.0)
        assert node.alive(), node.output()[-3000:]
        got = collect(ros_node, topics, count=count, timeout=timeout, qos=qos)
        infra_publishers = ros_node.count_publishers("/camera/infra1/image_rect_raw")
        assert node.stop() == 0, node.output()[-3000:]
        out = node.output()
    return got, infra_publishers, out


@pytest.mark.ros
def test_recorded_software_camera_through_node(ros_node, recording):
    from sensor_msgs.msg import CameraInfo, Image

    topics = {"/camera/depth/image_rect_raw": Image, "/camera/color/image_raw": Image,
              "/camera/infra1/image_rect_raw": Image, "/camera/depth/camera_info": CameraInfo,
              "/camera/color/camera_info": CameraInfo,
              "/camera/aligned_depth_to_color/image_raw": Image}
    got, _, out = _node_and_collect(ros_node, {"file_path": str(recording),
                                               "playback.loop": True}, topics, count=5)
    for topic, msgs in got.items():
        assert len(msgs) >= 5, f"{topic}: {len(msgs)}\n{out[-2000:]}"
    by_stamp: dict = {}
    for topic, msgs in got.items():
        for _, m in msgs:
            by_stamp.setdefault((m.header.stamp.sec, m.header.stamp.nanosec), {})[topic] = m
    complete = 0
    for stamp, msgs in by_stamp.items():
        depth = msgs.get("/camera/depth/image_rect_raw")
        if depth is None:
            continue
        k = frame_index(np.frombuffer(depth.data, np.uint16).reshape(H, W))
        assert k >= 0, "published depth differs from every recorded frame"
        if "/camera/color/image_raw" in msgs and "/camera/infra1/image_rect_raw" in msgs:
            color = np.frombuffer(msgs["/camera/color/image_raw"].data, np.uint8)
            ir = np.frombuffer(msgs["/camera/infra1/image_rect_raw"].data, np.uint8)
            assert np.array_equal(color.reshape(H, W, 3), injected(k)["color"])
            assert np.array_equal(ir.reshape(H, W), injected(k)["ir"])
            complete += 1
    assert complete >= 2

    # aligned depth: what rs.align(color) gives for the same recorded frame
    theirs = rs_aligned(recording)
    checked = 0
    for stamp, msgs in by_stamp.items():
        depth, aligned = (msgs.get("/camera/depth/image_rect_raw"),
                          msgs.get("/camera/aligned_depth_to_color/image_raw"))
        if depth is None or aligned is None:
            continue
        k = frame_index(np.frombuffer(depth.data, np.uint16).reshape(H, W))
        if k not in theirs:  # the reference plays in real time until set_real_time(False)
            continue         # takes hold, and can drop its first frameset under load
        ours = np.frombuffer(aligned.data, np.uint16).reshape(H, W)
        assert aligned.header.frame_id == "camera_color_optical_frame"
        assert (ours == theirs[k]).mean() >= 0.999, f"frame {k}: {(ours == theirs[k]).mean()}"
        assert (ours > 0).mean() > 0.5
        checked += 1
    assert checked >= 2
    _, info = got["/camera/color/camera_info"][-1]
    assert (info.k[0], info.k[4], info.k[2], info.k[5]) == pytest.approx(COLOR_K, abs=1e-3)
    assert info.distortion_model == "plumb_bob"
    assert list(info.d)[:5] == pytest.approx(COLOR_D, abs=1e-6)
    _, dinfo = got["/camera/depth/camera_info"][-1]
    assert (dinfo.k[0], dinfo.k[4], dinfo.k[2], dinfo.k[5]) == pytest.approx(DEPTH_K, abs=1e-3)
    assert dinfo.header.frame_id == "camera_depth_optical_frame"


@pytest.mark.ros
@pytest.mark.data
def test_real_d435_recording_through_node(ros_node, shared_data):
    """Intrinsics and depth (mm) on the topics equal what pyrealsense2 reads from the file."""
    from sensor_msgs.msg import CameraInfo, Image

    bag = shared_data / "realsense" / "d435_single_depth_color_640x480.bag"
    pipe, cfg = rs.pipeline(), rs.config()
    cfg.enable_device_from_file(str(bag), repeat_playback=False)
    profile = pipe.start(cfg)
    profile.get_device().as_playback().set_real_time(False)
    try:
        scale = profile.get_device().first_depth_sensor().get_depth_scale()
        streams = {s.stream_type(): s.as_video_stream_profile() for s in profile.get_streams()}
        d_intr = streams[rs.stream.depth].get_intrinsics()
        c_intr = streams[rs.stream.color].get_intrinsics()
        ok, frames = pipe.try_wait_for_frames(3000)
        assert ok
        expected_mm = np.asanyarray(frames.get_depth_frame().get_data()).astype(np.float64) \
            * scale * 1000.0
    finally:
        pipe.stop()

    topics = {"/camera/depth/image_rect_raw": Image, "/camera/depth/camera_info": CameraInfo,
              "/camera/color/camera_info": CameraInfo}
    got, infra_publishers, out = _node_and_collect(
        ros_node, {"file_path": str(bag), "playback.loop": True}, topics, count=2)
    for topic, msgs in got.items():
        assert msgs, f"nothing on {topic}\n{out[-2000:]}"
    assert infra_publishers == 0, "the recording has no IR: infra1 must not be published"
    assert "delivers no infra1 stream" in out
    _, depth = got["/camera/depth/image_rect_raw"][-1]
    assert (depth.encoding, depth.width, depth.height) == ("16UC1", 640, 480)
    mm = np.frombuffer(depth.data, np.uint16).reshape(480, 640)
    assert np.abs(mm - expected_mm).max() <= 0.5 + 1e-6  # depth units of 1 mm: identical
    assert 0.9 < (mm > 0).mean() < 0.97
    _, dinfo = got["/camera/depth/camera_info"][-1]
    _, cinfo = got["/camera/color/camera_info"][-1]
    for info, intr in ((dinfo, d_intr), (cinfo, c_intr)):
        assert (info.width, info.height) == (intr.width, intr.height)
        assert (info.k[0], info.k[4], info.k[2], info.k[5]) == pytest.approx(
            (intr.fx, intr.fy, intr.ppx, intr.ppy), abs=1e-4)
    assert dinfo.k[0] == pytest.approx(390.43, abs=0.01)
    assert cinfo.k[2] == pytest.approx(319.94, abs=0.01)


@pytest.mark.ros
def test_end_of_file_reports_ended_and_node_keeps_running(ros_node, recording):
    from diagnostic_msgs.msg import DiagnosticArray

    from harness import NodeProcess, collect

    def ended(got):
        return any(kv.key == "state" and kv.value == "ended"
                   for _, arr in got["/diagnostics"] for s in arr.status for kv in s.values)

    with NodeProcess.node("camera_node", {"source": "file", "file_path": str(recording),
                                          "playback.real_time": False}) as node:
        got = collect(ros_node, {"/diagnostics": DiagnosticArray}, count=10 ** 6,
                      timeout=30.0, stop_when=ended)
        assert ended(got), node.output()[-3000:]
        assert node.alive()
        assert node.stop() == 0, node.output()[-3000:]


def test_recording_without_depth_is_a_config_error(tmp_path):
    """A color-only recording: camera_node needs depth, and says so."""
    path = tmp_path / "color_only.db3"
    dev = rs.software_device()
    rgb = dev.add_sensor("RGB Camera")
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = (
        rs.stream.color, 0, 0, W, H, 30, 3, rs.format.rgb8)
    vs.intrinsics = model(COLOR_K).to_rs_intrinsics()
    profile = rgb.add_video_stream(vs)
    recorder = rs.recorder(str(path), dev)
    sink = rs.frame_queue(8)
    rgb.open(profile)
    rgb.start(sink)
    for k in range(3):
        frame = rs.software_video_frame()
        frame.pixels, frame.bpp, frame.stride = injected(k)["color"], 3, W * 3
        frame.timestamp, frame.frame_number = (k + 1) * 33.3, k + 1
        frame.domain, frame.profile = rs.timestamp_domain.hardware_clock, \
            profile.as_video_stream_profile()
        rgb.on_video_frame(frame)
        time.sleep(0.03)
    rgb.stop()
    rgb.close()
    del recorder
    with pytest.raises(SourceError, match="depth"):
        PlaybackSource(path).start()


def test_full_filter_chain_runs_on_playback(recording):
    """All five librealsense filters in realsense-ros order; intrinsics follow decimation."""
    filters = FilterSettings(decimation=True, decimation_magnitude=3, threshold=True,
                             threshold_min_m=0.5, threshold_max_m=4.0, spatial=True,
                             temporal=True, hole_filling=True)
    source = PlaybackSource(recording, StreamSettings(filters=filters), real_time=False)
    source.start()
    try:
        framesets = read_all(source, limit=3)
    finally:
        source.stop()
    assert len(framesets) == 3
    for fs in framesets:
        assert fs.depth.shape == (160, 216)  # 640/3 = 213 padded to a multiple of 4
        assert (fs.depth_model.width, fs.depth_model.height) == (216, 160)
        assert fs.depth_model.fx == pytest.approx(DEPTH_K[0] / 3, rel=1e-4)
        valid = fs.depth[fs.depth > 0]
        assert valid.size and valid.min() >= 500 and valid.max() <= 4000
