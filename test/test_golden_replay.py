"""Golden replay: a bag of the built-in scene through depth_inference_node and
lidar_fusion_node (real processes, real DDS, played by `depth-ai play`); their
outputs, summarised per input frame, must match test/golden/*.json within
tolerance, so a silent change of what they publish fails CI. Details and the
regeneration command: test/golden_replay.py."""
from __future__ import annotations

import json

import pytest

import golden_replay as gr
from depth_ai_nodes.pipeline import BY_KEY

pytestmark = pytest.mark.ros


def _missing() -> list[str]:
    return [f"{BY_KEY[k].executable} ({BY_KEY[k].module})" for k in ("inference", "fusion")
            if not BY_KEY[k].available()]


@pytest.fixture(scope="module")
def input_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "input"
    return path, gr.make_input_bag(path)


def test_input_bag_is_deterministic(input_bag, tmp_path):
    _, inputs = input_bag
    assert gr.make_input_bag(tmp_path / "again") == inputs


def test_inference_and_fusion_outputs_match_the_golden_references(input_bag, ros_node):
    missing = _missing()
    if missing:
        pytest.skip(f"node not written yet: {', '.join(missing)}")
    refs = {}
    for key in ("inference", "fusion"):
        path = gr.golden_path(key)
        assert path.is_file(), f"{path} missing: run python test/golden_replay.py"
        refs[key] = json.loads(path.read_text())
    bag, inputs = input_bag
    for key, ref in refs.items():
        changed = gr.compare_inputs(inputs, ref["input"])
        assert not changed, (
            f"the built-in scene renders different input than when {gr.golden_path(key).name} "
            f"was made; if that change is intended, regenerate: python test/golden_replay.py\n"
            + "\n".join(changed))
    got = gr.replay(bag, ros_node, ["inference", "fusion"])
    problems = []
    for ref in refs.values():
        problems += gr.compare(got, ref["outputs"])
    model_note = ""
    if refs["inference"].get("model_sha256") not in (None, gr.model_digest()):
        model_note = "the default model's .onnx changed since the references were made. "
    assert not problems, (f"outputs differ from the golden references. {model_note}If the "
                          f"change is intended: python test/golden_replay.py\n"
                          + "\n".join(problems[:40]))
