"""models/depth_fill_classical: the shipped completion model's classical fill on its own,
written out by training/export_classical_fill.py. It must stay that script's output, compute
exactly what the completion model's fill computes, and run as a model spec."""
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


def _exporter():
    sys.path.insert(0, str(ROOT / "training"))
    try:
        import export_classical_fill
    finally:
        sys.path.pop(0)
    return export_classical_fill


def test_the_shipped_file_is_what_the_script_writes():
    """Provenance: the script writes the shipped graph again, node for node."""
    onnx = pytest.importorskip("onnx")
    shipped = onnx.load(str(model_path("depth_fill_classical.onnx")))
    assert _graph(_exporter().build_classical_fill()) == _graph(shipped), (
        "models/depth_fill_classical.onnx is not what training/export_classical_fill.py writes: run it")
    assert shipped.graph.output[0].name == "depth_out" and len(shipped.graph.node) < 400


def _inputs(h: int, w: int, holes: float, seed: int) -> dict[str, np.ndarray]:
    """Two slanted surfaces with a step between them, random holes of the given share and a
    block hole deeper than the six rings (push-pull's part)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (1.0 + 0.01 * xx + 0.003 * yy + 0.5 * (xx > w // 2)).astype(np.float32)
    depth[rng.uniform(size=depth.shape) < holes] = 0.0
    depth[h // 4: h // 2, w // 4: w // 2] = 0.0
    return {"rgb": rng.uniform(size=(1, 3, h, w)).astype(np.float32), "depth": depth[None, None],
            "mask": (depth > 0).astype(np.float32)[None, None]}


def test_it_computes_exactly_the_completion_models_fill():
    """Bit for bit the fill that models/depth_completion.onnx computes before its network (the
    graph cut there), at any threads and graph optimisation level: the hand-written graph only
    drops work, it does not change a sum. Sizes from 32 x 32 (push-pull's smallest) to
    640 x 480; no holes, some, most, and none valid (the floor of 0.05 m everywhere)."""
    pytest.importorskip("onnx")
    import onnxruntime as ort

    cut = _exporter().classical_fill_cut(model_path("depth_completion.onnx")).SerializeToString()
    levels = ort.GraphOptimizationLevel
    for threads, level in ((1, levels.ORT_ENABLE_ALL), (2, levels.ORT_ENABLE_EXTENDED)):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.graph_optimization_level = threads, level
        reference = ort.InferenceSession(cut, opts, providers=["CPUExecutionProvider"])
        shipped = ort.InferenceSession(str(model_path("depth_fill_classical.onnx")), opts,
                                       providers=["CPUExecutionProvider"])
        for seed, (h, w, holes) in enumerate(((32, 32, 0.3), (64, 96, 0.0), (64, 96, 0.2), (96, 64, 0.7),
                                              (64, 64, 1.0), (480, 640, 0.2))):
            feeds = _inputs(h, w, holes, seed)
            want = reference.run(None, feeds)[0]
            got = shipped.run(None, feeds)[0]
            assert np.array_equal(got, want), (h, w, holes, threads, float(np.abs(got - want).max()))
    assert float(got[0, 0].min()) >= 0.05


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
