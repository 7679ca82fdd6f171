"""Every way a model can be unusable gives a clear error: start-up ModelError, per-frame FrameError."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("onnx")

import onnx_graphs as G  # noqa: E402

from depth_ai_nodes.core.depth_model import DepthModel, FrameError, ModelError, resolve_providers  # noqa: E402
from depth_ai_nodes.core.depth_pipeline import DepthPipeline  # noqa: E402

RGB = [{"name": "rgb", "data": "rgb"}]


def test_missing_model_file(tmp_path):
    spec = G.write_spec(tmp_path / "s.yaml", tmp_path / "absent.onnx", RGB, {"name": "out"})
    with pytest.raises(ModelError, match="absent.onnx does not exist"):
        DepthModel(spec)


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07 this is not a protobuf" * 10)
    spec = G.write_spec(tmp_path / "s.yaml", bad, RGB, {"name": "out"})
    with pytest.raises(ModelError, match="cannot load model .*corrupt.onnx"):
        DepthModel(spec)


def test_spec_graph_mismatch(tmp_path):
    onnx_path = G.channel_mean_nchw(tmp_path / "m.onnx", shape=(1, 3, 64, 64))
    spec = G.write_spec(tmp_path / "s.yaml", onnx_path,
                        [{"name": "rgb", "data": "rgb", "size": [32, 32]}], {"name": "out"})
    with pytest.raises(ModelError, match="does not match m.onnx: .*fixed 32x32.*64x64"):
        DepthModel(spec)


def test_absent_execution_provider(tmp_path):
    onnx_path = G.channel_mean_nchw(tmp_path / "m.onnx")
    spec = G.write_spec(tmp_path / "s.yaml", onnx_path, RGB, {"name": "out"})
    absent = next(p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider", "OpenVINOExecutionProvider")
                  if p not in ort.get_available_providers())
    with pytest.raises(ModelError, match=f"{absent}.*not available.*available: .*CPUExecutionProvider"):
        DepthModel(spec, providers=[absent])
    with pytest.raises(ModelError, match="'warp-drive'"):
        resolve_providers(["warp-drive"])
    assert resolve_providers(["cpu"]) == ["CPUExecutionProvider"]


def test_nan_output_is_a_frame_error(tmp_path):
    onnx_path = G.nan_output(tmp_path / "nan.onnx")
    model = DepthModel(G.write_spec(tmp_path / "s.yaml", onnx_path, RGB, {"name": "out"}))
    with pytest.raises(FrameError, match="non-finite values"):
        model.predict(np.zeros((8, 8, 3), np.uint8))


def test_three_channel_output_with_symbolic_size_is_a_start_up_error(tmp_path):
    """[1, 3, H, W] (onnxruntime infers it through the graph) used to load and then fail
    every frame; it is a configuration error at load now."""
    onnx_path = G.undeclared_channels(tmp_path / "w.onnx")
    with pytest.raises(ModelError, match=r"3 channels; a depth output has one"):
        DepthModel(G.write_spec(tmp_path / "s.yaml", onnx_path, RGB, {"name": "out"}))


def test_bad_frames_are_frame_errors_and_the_model_keeps_working(tmp_path):
    onnx_path = G.two_outputs(tmp_path / "two.onnx")
    spec = G.write_spec(tmp_path / "s.yaml", onnx_path,
                        [{"name": "rgb", "data": "rgb"}, {"name": "depth", "data": "depth"}],
                        {"name": "depth_a"})
    pipe = DepthPipeline(DepthModel(spec))
    rgb = np.zeros((10, 12, 3), np.uint8)
    with pytest.raises(FrameError, match="must be registered to the colour image"):
        pipe.process(rgb, np.ones((5, 6), np.float32))
    with pytest.raises(FrameError, match=r"expected \(H, W, 3\)"):
        pipe.process(np.zeros((10, 12), np.uint8), np.ones((10, 12), np.float32))
    with pytest.raises(FrameError, match="takes depth as input"):
        pipe.process(rgb)
    res = pipe.process(rgb, np.ones((10, 12), np.float32))
    np.testing.assert_allclose(res.depth, 2.0)
