"""A regression guard for the shipped depth completion model (issue #10), not the benchmark
(that is `depth-ai eval --real`): on rgbd-train frames held out from training (the last 12 %
of each folder, the model-selection split), with the evaluation's own hole masks, the
shipped model's RMSE on the hidden pixels must beat OpenCV's Telea by a margin."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from depth_ai_nodes.core.hole_masks import make_hole_mask

MARGIN = 0.98       # pooled RMSE model / Telea must be below this


def held_out_frames(root, per_folder: int = 2):
    """A few of each folder's selection frames (never trained on), spread over the block."""
    from depth_ai_nodes.tools.evaluate import RGBD_TRAIN_FOLDERS, RGBD_TRAIN_UNREGISTERED, rgbd_train_split

    for folder in RGBD_TRAIN_FOLDERS:
        selection = rgbd_train_split(root / folder)[1]
        for dp in selection[:: max(1, len(selection) // per_folder)][:per_folder]:
            depth = np.asarray(Image.open(dp), dtype=np.float32) / 1000.0
            rgb = np.asarray(Image.open(str(dp).replace("_depth.png", "_color.jpg")).convert("RGB"))
            if folder in RGBD_TRAIN_UNREGISTERED:  # unregistered colour: grey, as in training
                rgb = np.full_like(rgb, 128)
            yield folder, rgb, depth


@pytest.mark.data
@pytest.mark.parametrize("spec", ["depth_completion.yaml", "depth_fill_classical.yaml"])
def test_shipped_model_beats_telea_on_held_out_training_frames(shared_data, spec):
    """Both shipped specs: the model, and its classical fill alone."""
    pytest.importorskip("cv2", reason="opencv (the eval extra) is needed for Telea")
    from depth_ai_nodes.core.depth_model import DepthModel
    from depth_ai_nodes.core.depth_pipeline import DepthPipeline, PipelineConfig
    from depth_ai_nodes.resources import model_path
    from depth_ai_nodes.tools.evaluate import telea

    pipe = DepthPipeline(DepthModel(str(model_path(spec)), intra_op_threads=2),
                         PipelineConfig(max_depth_m=100.0, min_depth_m=0.01))
    sq_model = sq_telea = 0.0
    for k, (folder, rgb, depth) in enumerate(held_out_frames(shared_data / "rgbd-train")):
        for j in range(2):
            hide = make_hole_mask(depth, rgb, seed=5000 + 10 * k + j)
            inp = np.where(hide, 0.0, depth).astype(np.float32)
            pred = np.nan_to_num(pipe.process(rgb, inp).depth, nan=0.0)
            sq_model += float(((pred - depth)[hide] ** 2).sum())
            sq_telea += float(((telea(inp) - depth)[hide] ** 2).sum())
    ratio = np.sqrt(sq_model / sq_telea)
    print(f"held-out rgbd-train: {spec} RMSE / Telea RMSE = {ratio:.3f}")
    assert ratio < MARGIN, f"{spec} RMSE / Telea RMSE = {ratio:.3f} on held-out rgbd-train frames"
