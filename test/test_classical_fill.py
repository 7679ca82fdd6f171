"""models/depth_fill_classical: the shipped completion model cut before its network
(training/export_classical_fill.py). It must stay exactly that cut, and run as a model spec."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from depth_ai_nodes.resources import model_path

ROOT = Path(__file__).resolve().parent.parent


def _graph(model) -> tuple:
    """What a graph computes: its nodes (op, inputs, outputs, attributes), constants, inputs
    and outputs by name (not the shape annotations, which onnx versions write differently)."""
    g = model.graph
    return ([(n.op_type, tuple(n.input), tuple(n.output), tuple(a.SerializeToString() for a in n.attribute))
             for n in g.node],
            sorted((i.name, i.SerializeToString()) for i in g.initializer),
            [i.name for i in g.input], [o.name for o in g.output], [(o.domain, o.version) for o in model.opset_import])


def test_the_shipped_file_is_the_cut_of_the_shipped_model():
    """Provenance: cutting models/depth_completion.onnx again gives the shipped graph."""
    onnx = pytest.importorskip("onnx")
    sys.path.insert(0, str(ROOT / "training"))
    try:
        from export_classical_fill import classical_fill
    finally:
        sys.path.pop(0)
    shipped = onnx.load(str(model_path("depth_fill_classical.onnx")))
    assert _graph(classical_fill(model_path("depth_completion.onnx"))) == _graph(shipped), (
        "models/depth_fill_classical.onnx is not the cut of models/depth_completion.onnx: run "
        "python training/export_classical_fill.py")
    assert shipped.graph.output[0].name == "depth_out" and len(shipped.graph.node) < 1200


def test_it_is_the_completion_model_without_its_correction():
    """The shipped model with its last convolution zeroed (correction exp(tanh(0)) = 1) gives
    the same depth as the cut; the full model's correction changes the fill in the holes."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from depth_ai_nodes.core.depth_model import DepthModel
    from depth_ai_nodes.core.depth_pipeline import DepthPipeline, PipelineConfig

    full = onnx.load(str(model_path("depth_completion.onnx")))
    for init in full.graph.initializer:
        if init.name.startswith("full.3."):  # the head's last convolution: the residual
            init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    h, w = 64, 96
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (1.0 + 0.01 * xx + 0.5 * (xx > 50)).astype(np.float32)
    depth[(rng.uniform(size=depth.shape) < 0.15) | ((yy > 20) & (yy < 32) & (xx > 30) & (xx < 70))] = 0.0
    rgb = rng.integers(0, 255, (h, w, 3), np.uint8)
    feeds = {"rgb": rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0, "depth": depth[None, None],
             "mask": (depth > 0).astype(np.float32)[None, None]}
    zeroed = ort.InferenceSession(full.SerializeToString(), providers=["CPUExecutionProvider"])
    cut = ort.InferenceSession(str(model_path("depth_fill_classical.onnx")), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(cut.run(None, feeds)[0], zeroed.run(None, feeds)[0], rtol=1e-6)
    cfg = PipelineConfig(edge_snap_px=0)
    fill = DepthPipeline(DepthModel(str(model_path("depth_fill_classical.yaml"))), cfg).process(rgb, depth).depth
    model = DepthPipeline(DepthModel(str(model_path("depth_completion.yaml"))), cfg).process(rgb, depth).depth
    assert np.isfinite(fill).all()
    hole = depth == 0
    assert not np.array_equal(fill[hole], model[hole])


def test_a_model_setting_may_name_a_shipped_spec(tmp_path):
    from depth_ai_nodes.resources import model_spec

    assert model_spec("") == model_path("depth_fill_classical.yaml")
    assert model_spec("depth_completion") == model_path("depth_completion.yaml")
    assert model_spec("depth_fill_classical") == model_path("depth_fill_classical.yaml")
    assert model_spec("depth_fill_classical.yaml") == model_path("depth_fill_classical.yaml")
    assert model_spec("midas_v21_small") == model_path("specs") / "midas_v21_small.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("name: mine\n")
    assert model_spec(str(own)) == own
    assert model_spec("no_such_model") == Path("no_such_model")  # the caller reports it missing
    assert model_spec("./depth_fill_classical") == Path("./depth_fill_classical")  # a path stays a path
