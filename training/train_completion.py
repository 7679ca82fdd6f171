"""Train a depth completion model on real RGB-D and export it to ONNX (the shipped weights
came from this script at commit 5507c19; models/MODEL_CARD.md says why the real-data models
measured so far, this script's defaults included (run7), are not shipped).

    pip install -e '.[train]'          # torch + onnx, never needed at run time
    nice python training/train_completion.py --out /tmp/depth_completion_real.onnx

Reproducible: one --seed fixes the data split, the masks, the initialisation and the
batch order (torch runs deterministic CPU kernels). One run of the defaults takes
about 35 minutes on the 2-core reference CPU.

Architecture (--head blend, the default; ~130 k parameters, edge-CPU friendly):
  1. INSIDE the graph, three classical candidates for every hole pixel, computed at half
     resolution and brought back to full resolution (measured pixels kept):
     - peel_fill: a first-order fill a ring at a time from the hole borders inward (the
       onion-peel order of Telea's fast marching), each ring pixel a Gaussian-weighted
       local plane fitted to the known pixels around it; push-pull beyond PEEL_ITERS rings;
     - side_fills: the NEAREST and the FARTHEST measured depth around the hole, carried in
       ring by ring with min / max pooling, which never mixes the two surfaces of an edge.
  2. A small U-Net of depthwise-separable convolutions (1/2 .. 1/32 resolution) sees the
     colour as local contrast (no absolute brightness), the log fill (scale-free), the mask,
     the support, how far the two sides are from the fill and how far the peel fill jumps
     near the pixel (peel_jumps: one slanted surface vs a depth edge), and outputs per pixel
     the weights of the three candidates and a small bounded residual (x0.82 .. x1.22).
  The network never invents depth: it decides, softly, which side of an edge a hole pixel
  belongs to and how much to trust the smooth fill. --head residual is the previous design
  (a bounded log residual on the peel fill), which did not generalise from real frames.
  Loss: squared error on the hidden pixels, each sample divided by its median depth (the
  evaluation is RMSE) + a small log-L1; where exact truth exists (the built-in scene) the
  measured pixels too, so they are denoised.

Training data (the evaluation frames in ../shared/data/rgbd and realsense are NEVER used):
  - ../shared/data/rgbd-train (670 real frames, four sensors; see its README): selection
    uses the last --holdout share of each folder, never trained on. 7-Scenes colour is not
    registered to its depth, so the net gets flat grey there (depth-only learning).
  - 120 frames of the built-in scene (depth_ai_nodes.core.scene) at 640x480: its noisy holey
    sensor depth registered to colour, with exact ground truth (10 % of the samples).
  Self-supervision: valid depth is hidden with the evaluation's own sensor-like hole
  generator (core/hole_masks.py, holes sized as in the whole frame, not the crop) and the
  network learns to restore it; 30 % of the crops also get a straight band hole across them
  (--band-holes), whose two sides are often one floor or wall. Crops 256x320, flips,
  photometric augmentation, colour
  shifted up to 3 px against depth in half the samples, a random global depth scale.
  Model selection: the step with the lowest mean over folders of model RMSE / Telea RMSE on
  the held-out rgbd-train frames.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from depth_ai_nodes.core.hole_masks import make_hole_mask, smooth_noise  # noqa: E402
from depth_ai_nodes.tools.evaluate import SELECTION_SHARE  # noqa: E402

LEVELS = 5          # push-pull octaves: input H, W must be multiples of 2**LEVELS
MULTIPLE = 2 ** LEVELS


# ---------------------------------------------------------------- the network
class DSConv(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 + ReLU6: the MobileNet building block."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.pw(self.dw(x)))


def push_pull(num: torch.Tensor, den: torch.Tensor, levels: int = LEVELS) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-scale normalized convolution: dense fill of num/den, and the support."""
    nums, dens = [num], [den]
    for _ in range(levels):
        nums.append(F.avg_pool2d(nums[-1], 2))
        dens.append(F.avg_pool2d(dens[-1], 2))
    # coarsest level: holes there take the image's mean valid depth
    gmean = nums[0].sum(dim=(2, 3), keepdim=True) / dens[0].sum(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    fill = torch.where(dens[-1] > 1e-6, nums[-1] / dens[-1].clamp(min=1e-6), gmean)
    for lvl in range(levels - 1, -1, -1):
        up = F.interpolate(fill, scale_factor=2.0, mode="bilinear", align_corners=False)
        w = (dens[lvl] * 4.0).clamp(max=1.0)
        here = nums[lvl] / dens[lvl].clamp(min=1e-6)
        fill = w * here + (1.0 - w) * up
    support = (F.avg_pool2d(den, 5, 1, 2, count_include_pad=False))
    return fill, support


PEEL_ITERS = 6      # rings (at half resolution: 12 px at full resolution) filled by first-order extrapolation before push-pull takes over
PEEL_RADIUS = 3     # plane-fit window radius (pixels)
PEEL_SIGMA = 2.0    # Gaussian applicability of the plane fit (pixels)
PEEL_RIDGE = 0.01   # pulls poorly constrained slopes toward zero


def _peel_kernels() -> tuple[torch.Tensor, torch.Tensor]:
    """Separable moment kernels as two dense convolutions (one op each, cheap in onnxruntime):
    horizontal (c, f) -> (c*g0, c*g1, c*g2, f*g0, f*g1), then vertical -> the nine moments
    m00 m10 m01 m20 m11 m02 b0 b1 b2 (g_k = Gaussian * (x/r)^k)."""
    x = torch.arange(-PEEL_RADIUS, PEEL_RADIUS + 1, dtype=torch.float32)
    g = torch.exp(-x ** 2 / (2 * PEEL_SIGMA ** 2))
    gk = [g, g * x / PEEL_RADIUS, g * (x / PEEL_RADIUS) ** 2]
    k = 2 * PEEL_RADIUS + 1
    hor = torch.zeros(5, 2, 1, k)
    for o, (i, j) in enumerate(((0, 0), (0, 1), (0, 2), (1, 0), (1, 1))):  # (input, order)
        hor[o, i, 0] = gk[j]
    ver = torch.zeros(9, 5, k, 1)
    # (horizontal channel, vertical order) per moment
    for o, (i, j) in enumerate(((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2), (3, 0), (4, 0), (3, 1))):
        ver[o, i, :, 0] = gk[j]
    return hor, ver


def peel_fill(depth: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """peel_fill_full at half resolution (4x cheaper; each ring is two pixels wide), measured
    pixels kept at full resolution: the fill only supplies the holes, which the network then
    refines at full resolution."""
    num = F.avg_pool2d(depth * valid, 2)
    den = F.avg_pool2d(valid, 2)
    half_valid = (den > 0.24).to(depth.dtype)
    half = torch.where(half_valid > 0.5, num / den.clamp(min=1e-6), torch.zeros_like(num))
    fill_half, _ = peel_fill_full(half, half_valid)
    fill_up = F.interpolate(fill_half, scale_factor=2.0, mode="nearest")
    fill = torch.where(valid > 0.5, depth, fill_up)
    support = F.avg_pool2d(valid, 5, 1, 2, count_include_pad=False)
    return fill, support


def peel_fill_full(depth: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Classical fill, first order, parallel: a ring at a time from the hole borders inward
    (the onion-peel order of Telea's fast marching), each ring pixel gets a Gaussian-weighted
    local PLANE fitted to the known pixels around it (normalized differential convolution:
    moment convolutions + a 3x3 Cramer solve per pixel), so slanted floors and walls are
    extrapolated instead of flattened. Whatever PEEL_ITERS rings leave is filled by push-pull.
    Returns (fill, support)."""
    hor, ver = _peel_kernels()
    r = PEEL_RADIUS
    d, c = depth * valid, valid
    for _ in range(PEEL_ITERS):
        m = F.conv2d(F.conv2d(torch.cat([c, d * c], 1), hor, padding=(0, r)), ver, padding=(r, 0))
        m00, m10, m01, m20, m11, m02, b0, b1, b2 = torch.split(m, 1, dim=1)
        a11, a22 = m20 + PEEL_RIDGE * m00, m02 + PEEL_RIDGE * m00
        c0, c1, c2 = a11 * a22 - m11 * m11, m10 * a22 - m11 * m01, m10 * m11 - a11 * m01
        det = m00 * c0 - m10 * c1 + m01 * c2
        num = b0 * c0 - b1 * (m10 * a22 - m01 * m11) + b2 * (m10 * m11 - m01 * a11)
        z = b0 / m00.clamp(min=1e-12)                       # zeroth order (weighted mean)
        plane = num / det.clamp(min=1e-12)
        # a plane may not run away from its neighbourhood: at most +-50 % of the mean
        val = torch.where(det > 1e-9, torch.minimum(torch.maximum(plane, 0.5 * z), 1.5 * z), z)
        ring = (c < 0.5) & (F.max_pool2d(c, 3, 1, 1) > 0.5)
        d = torch.where(ring, val, d)
        c = torch.where(ring, torch.ones_like(c), c)
    rest, _ = push_pull(d * c, c, LEVELS - 1)  # runs at half resolution
    fill = torch.where(c > 0.5, d, rest)
    support = F.avg_pool2d(valid, 5, 1, 2, count_include_pad=False)
    return fill, support


def _up(t: torch.Tensor) -> torch.Tensor:
    return F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False)


class UNet(nn.Module):
    """Depthwise-separable encoder 1/2 .. 1/32 and decoder back to 1/2 resolution, where
    convolutions are cheap; returns the c[0]-channel features at 1/2 resolution."""

    def __init__(self, cin: int, c: tuple[int, ...] = (16, 32, 64, 96, 128)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(cin, c[0], 3, 2, 1), nn.ReLU6())             # 1/2
        self.e1 = nn.Sequential(DSConv(c[0], c[1], 2), DSConv(c[1], c[1]))              # 1/4
        self.e2 = nn.Sequential(DSConv(c[1], c[2], 2), DSConv(c[2], c[2]), DSConv(c[2], c[2]))  # 1/8
        self.e3 = nn.Sequential(DSConv(c[2], c[3], 2), DSConv(c[3], c[3]), DSConv(c[3], c[3]))  # 1/16
        self.e4 = nn.Sequential(DSConv(c[3], c[4], 2), DSConv(c[4], c[4]), DSConv(c[4], c[4]))  # 1/32
        self.d3 = DSConv(c[4] + c[3], c[3])
        self.d2 = DSConv(c[3] + c[2], c[2])
        self.d1 = DSConv(c[2] + c[1], c[1])
        self.d0 = DSConv(c[1] + c[0], c[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.stem(x)
        s1 = self.e1(s0)
        s2 = self.e2(s1)
        s3 = self.e3(s2)
        s4 = self.e4(s3)
        y = self.d3(torch.cat([_up(s4), s3], 1))
        y = self.d2(torch.cat([_up(y), s2], 1))
        y = self.d1(torch.cat([_up(y), s1], 1))
        return self.d0(torch.cat([_up(y), s0], 1))


class CompletionNet(nn.Module):
    """rgb (N,3,H,W) 0..1, depth (N,1,H,W) metres (0 invalid), mask (N,1,H,W) 1 valid
    -> depth (N,1,H,W) metres, dense.

    The encoder-decoder runs at 1/2 .. 1/32 resolution, where convolutions are cheap; at full
    resolution only one depthwise-separable block sees the upsampled features with the inputs,
    so the 640x480 cost is dominated by the classical pre-fill, not by the network."""

    def __init__(self, c: tuple[int, ...] = (16, 32, 64, 96, 128)) -> None:
        super().__init__()
        cin = 3 + 1 + 1 + 1
        self.unet = UNet(cin, c)
        # full-resolution head: two 1x1 convolutions summed (a concat at 640x480 costs more
        # than the convolution) and one dense 3x3 to a single channel; no depthwise
        # convolution at full resolution (onnxruntime runs those slowly)
        self.head_feat = nn.Conv2d(c[0], 16, 1)
        self.head_in = nn.Conv2d(cin, 16, 1, bias=False)
        self.head_out = nn.Conv2d(16, 1, 3, 1, 1)
        nn.init.zeros_(self.head_out.weight)
        nn.init.zeros_(self.head_out.bias)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        valid = mask * (depth > 0).to(depth.dtype)
        fill, support = peel_fill(depth, valid)
        logp = torch.log(fill.clamp(min=0.05))
        mu = (logp * valid).sum(dim=(2, 3), keepdim=True) / valid.sum(dim=(2, 3), keepdim=True).clamp(min=1.0)
        # colour as local contrast (minus a 15x15 mean): edges and texture, not absolute
        # brightness, which says nothing about depth in real scenes
        hp = rgb - F.avg_pool2d(rgb, 15, 1, 7, count_include_pad=False)
        x = torch.cat([hp * 4.0, logp - mu, valid, support], dim=1)
        y = self.unet(x)
        res = self.head_out(F.relu6(self.head_feat(_up(y)) + self.head_in(x)))
        # bounded correction (x0.61 .. x1.65): the classical fill stays the anchor
        return fill.clamp(min=0.05) * torch.exp(RESIDUAL_BOUND * torch.tanh(res))


RESIDUAL_BOUND = 0.5  # log-depth correction limit of the network


SIDE_ITERS = 6      # rings the nearest / farthest side is carried into a hole (half resolution)
BIG_DEPTH = 1.0e4


def side_fills(depth: torch.Tensor, valid: torch.Tensor, fallback: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two sides of a depth edge carried into the holes: the nearest (min) and the
    farthest (max) measured depth around each hole pixel, propagated ring by ring at half
    resolution (min / max pooling never mixes the two surfaces, so neither is a flying
    pixel). Beyond SIDE_ITERS rings, `fallback` (the peel fill). Measured pixels kept."""
    lo = torch.where(valid > 0.5, depth, torch.full_like(depth, BIG_DEPTH))
    hi = depth * valid
    lo = -F.max_pool2d(-lo, 2)
    hi = F.max_pool2d(hi, 2)
    c = F.max_pool2d(valid, 2)
    for _ in range(SIDE_ITERS):
        ring = (c < 0.5) & (F.max_pool2d(c, 3, 1, 1) > 0.5)
        lo = torch.where(ring, -F.max_pool2d(-lo, 3, 1, 1), lo)
        hi = torch.where(ring, F.max_pool2d(hi, 3, 1, 1), hi)
        c = torch.where(ring, torch.ones_like(c), c)
    up = lambda t: F.interpolate(t, scale_factor=2.0, mode="nearest")  # noqa: E731
    reach = up(c) > 0.5
    near = torch.where(valid > 0.5, depth, torch.where(reach, up(lo), fallback))
    far = torch.where(valid > 0.5, depth, torch.where(reach, up(hi), fallback))
    return near, far


class BlendNet(nn.Module):
    """Same inputs and output as CompletionNet. The network does not invent depth: per pixel
    it weighs three classical candidates, the smooth first-order fill (peel), the nearest
    side and the farthest side of the hole (a learned, soft version of the edge-side choice
    that bounds what any filler can gain at depth edges), then applies a small bounded
    residual (x0.82 .. x1.22), which is also what denoises measured pixels. A strong
    inductive bias: fewer ways to overfit 670 real frames of four scenes."""

    def __init__(self, c: tuple[int, ...] = (16, 32, 64, 96, 128)) -> None:
        super().__init__()
        cin = 3 + 1 + 1 + 1 + 2 + 1
        self.unet = UNet(cin, c)
        # the head runs at 1/2 resolution (the weights of three sharp candidates need not be
        # sharp themselves); only the upsampled weights and the blend touch full resolution
        self.head_feat = nn.Conv2d(c[0], 16, 1)
        self.head_in = nn.Conv2d(cin, 16, 1, bias=False)
        self.head_out = nn.Conv2d(16, 4, 3, 1, 1)   # 3 candidate logits + 1 residual
        nn.init.zeros_(self.head_out.weight)
        with torch.no_grad():
            self.head_out.bias.copy_(torch.tensor([3.0, 0.0, 0.0, 0.0]))  # start at the peel fill

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        valid = mask * (depth > 0).to(depth.dtype)
        fill, support = peel_fill(depth, valid)
        fill = fill.clamp(min=0.05)
        near, far = side_fills(depth, valid, fill)
        near, far = near.clamp(min=0.05), far.clamp(min=0.05)
        logp = torch.log(fill)
        mu = (logp * valid).sum(dim=(2, 3), keepdim=True) / valid.sum(dim=(2, 3), keepdim=True).clamp(min=1.0)
        hp = rgb - F.avg_pool2d(rgb, 15, 1, 7, count_include_pad=False)
        x = torch.cat([hp * 4.0, logp - mu, valid, support, torch.log(near) - logp, torch.log(far) - logp,
                       peel_jumps(logp, valid)], dim=1)
        y = self.unet(x)
        out = _up(self.head_out(F.relu6(self.head_feat(y) + self.head_in(F.avg_pool2d(x, 2)))))
        # softmax over the three logits, written out (onnxruntime's channel softmax is slow here)
        e = torch.exp(out[:, :3] - out[:, :3].amax(dim=1, keepdim=True))
        blend = (e[:, 0:1] * fill + e[:, 1:2] * near + e[:, 2:3] * far) / e.sum(dim=1, keepdim=True)
        return blend * torch.exp(0.2 * torch.tanh(out[:, 3:4]))


def peel_jumps(logp: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """How far the peel fill jumps inside a hole: the largest 3x3 log-depth range (half
    resolution) within ~14 px. Where both sides of a hole lie on one slanted surface the
    first-order fronts meet smoothly (small jump) and the peel is right even though it lies
    between the nearest and farthest side; at a depth edge the fronts meet with a step (large
    jump) and a side is right. Without this cue both cases look alike to the blend weights."""
    lp = F.avg_pool2d(logp, 2)
    hole = (F.avg_pool2d(valid, 2) < 0.5).to(lp.dtype)
    spread = F.max_pool2d(lp, 3, 1, 1) + F.max_pool2d(-lp, 3, 1, 1)
    jump = F.max_pool2d(spread * hole, 7, 1, 3)
    return F.interpolate(jump, scale_factor=2.0, mode="nearest") * 10.0


HEADS = {"residual": CompletionNet, "blend": BlendNet}


# ---------------------------------------------------------------- data
def _plane(h: int, w: int, rng: np.random.Generator, z0: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    gx, gy = rng.normal(0, 0.6, 2) / max(h, w)
    return np.clip(z0 * (1.0 + gx * (xx - w / 2) + gy * (yy - h / 2)), 0.3, 12.0)


def _shape_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
    kind = rng.integers(0, 4)
    size = rng.uniform(0.08, 0.45) * max(h, w)
    if kind == 0:  # ellipse
        a, b = size, size * rng.uniform(0.3, 1.0)
        th = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
        v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
        return (u / a) ** 2 + (v / b) ** 2 < 1
    if kind == 1:  # rotated rectangle / bar
        a, b = size, size * rng.uniform(0.05, 0.8)
        th = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
        v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
        return (np.abs(u) < a) & (np.abs(v) < b)
    if kind == 2:  # convex polygon
        n = rng.integers(3, 7)
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        px, py = cx + size * np.cos(ang), cy + size * np.sin(ang)
        inside = np.ones((h, w), dtype=bool)
        for i in range(n):
            x0, y0, x1, y1 = px[i], py[i], px[(i + 1) % n], py[(i + 1) % n]
            inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
        return inside
    # blobby organic shape
    return smooth_noise((h, w), rng, size / 2) + 1.2 * (1 - np.hypot(xx - cx, yy - cy) / size) > 1.0


def _texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.uniform(0.05, 0.95, 3)
    img = np.ones((h, w, 3)) * base
    kind = rng.integers(0, 4)
    if kind == 1:
        img += rng.uniform(0.02, 0.2) * smooth_noise((h, w), rng, rng.uniform(3, 30))[..., None] * rng.uniform(0.5, 1, 3)
    elif kind == 2:  # stripes: colour edges with no depth edge
        yy, xx = np.mgrid[0:h, 0:w]
        th = rng.uniform(0, np.pi)
        per = rng.uniform(6, 40)
        s = (np.sin((xx * np.cos(th) + yy * np.sin(th)) * 2 * np.pi / per) > 0)
        img = np.where(s[..., None], img, np.clip(base + rng.normal(0, 0.25, 3), 0, 1))
    elif kind == 3:
        img += 0.05 * rng.standard_normal((h, w, 1))
    return img


def procedural_frame(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb float 0..1, sensor depth m with holes, ground-truth depth m)."""
    z_far = rng.uniform(1.5, 8.0)
    depth = _plane(h, w, rng, z_far)
    rgb = _texture(h, w, rng)
    if rng.random() < 0.5:  # a second wall / floor with a crease
        m = _shape_mask(h, w, rng) if rng.random() < 0.5 else (np.mgrid[0:h, 0:w][0] > rng.uniform(0.4, 0.9) * h)
        depth = np.where(m, _plane(h, w, rng, z_far * rng.uniform(0.6, 1.0)), depth)
        rgb = np.where(m[..., None], _texture(h, w, rng), rgb)
    for _ in range(rng.integers(2, 10)):
        m = _shape_mask(h, w, rng)
        z = _plane(h, w, rng, rng.uniform(0.5, 1.0) * float(np.median(depth)))
        m &= z < depth
        depth = np.where(m, z, depth)
        if rng.random() < 0.85:
            tex = _texture(h, w, rng)
        else:  # same colour as what it occludes: a depth edge without a colour edge
            tex = rgb + rng.normal(0, 0.03, 3)
        rgb = np.where(m[..., None], tex, rgb)
    # colour-only decals
    for _ in range(rng.integers(0, 4)):
        m = _shape_mask(h, w, rng)
        rgb = np.where(m[..., None], _texture(h, w, rng), rgb)
    # shading by depth and a light gradient
    # shading independent of depth: brightness must not become a depth cue (real scenes have
    # dark near objects and bright far walls; a depth-linked shade taught "dark = far")
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    shade = rng.uniform(0.6, 1.2) * (1.0 + rng.uniform(-0.3, 0.3) * xx + rng.uniform(-0.3, 0.3) * yy)
    rgb = rgb * shade[..., None] + rng.uniform(-0.1, 0.1)
    # slight blur (optics) and noise
    rgb = 0.5 * rgb + 0.125 * (np.roll(rgb, 1, 0) + np.roll(rgb, -1, 0) + np.roll(rgb, 1, 1) + np.roll(rgb, -1, 1))
    rgb = np.clip(rgb + rng.normal(0, 0.01, rgb.shape), 0, 1)
    gt = depth.astype(np.float32)
    # sensor: noise growing with z^2, quantisation, holes on edges, far range, blobs
    sensor = depth * (1 + rng.normal(0, 1, depth.shape) * 0.002 * depth)
    sensor = np.round(sensor * 1000.0) / 1000.0
    holes = make_hole_mask(depth, rgb, int(rng.integers(1 << 30)), fraction=rng.uniform(0.0, 0.12))
    sensor[holes] = 0.0
    sensor[depth > rng.uniform(5, 12)] = 0.0
    return rgb.astype(np.float32), sensor.astype(np.float32), gt


def scene_frames(n: int, h: int, w: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Crops of the built-in scene in the COLOUR geometry, as the node sees them: sensor depth
    and exact ground truth both registered to colour with librealsense's align rules."""
    try:
        from depth_ai_nodes.core.registration import align_depth_to_color
        from depth_ai_nodes.core.scene import CameraRig, SyntheticCamera, World
    except Exception as err:  # the scene needs core modules that may be absent
        print(f"built-in scene unavailable ({err}); procedural data only", flush=True)
        return []
    out = []
    rng = np.random.default_rng(seed)
    rig = CameraRig(max(320, w), max(240, h))
    cam = SyntheticCamera(World.default(seed=seed), rig, seed=seed)
    units = 0.0002
    for i in range(n):
        f = cam.render(float(rng.uniform(0, 120)))
        gt_q = np.clip(np.nan_to_num(f.gt_depth_m) / units + 0.5, 0, 65535).astype(np.uint16)
        gt = align_depth_to_color(gt_q, rig.depth_model, rig.color_model, rig.depth_to_color,
                                  depth_scale=units).astype(np.float32) * units
        sens = align_depth_to_color(f.depth_mm, rig.depth_model, rig.color_model, rig.depth_to_color,
                                    depth_scale=0.001).astype(np.float32) / 1000.0
        rgb = f.color.astype(np.float32) / 255.0
        y0 = int(rng.integers(0, gt.shape[0] - h + 1))
        x0 = int(rng.integers(0, gt.shape[1] - w + 1))
        sl = (slice(y0, y0 + h), slice(x0, x0 + w))
        out.append((rgb[sl], sens[sl], gt[sl]))
    return out


def real_frames(root: Path, holdout: float) -> tuple[list[tuple], list[tuple]]:
    """The real frames of rgbd-train as (folder, rgb float 0..1, depth m), split per folder into
    training and selection frames. Frames are sequences, so the selection frames are the last
    `holdout` share of each folder (one contiguous block, no near-duplicates of training
    frames). Unregistered colour (7-Scenes) is replaced by flat grey: the net sees depth only."""
    from PIL import Image

    from depth_ai_nodes.tools.evaluate import RGBD_TRAIN_FOLDERS, RGBD_TRAIN_UNREGISTERED, rgbd_train_split

    train_set, select_set = [], []
    for folder in RGBD_TRAIN_FOLDERS:
        train_files, select_files = rgbd_train_split(root / folder, holdout)
        if not select_files:
            raise SystemExit(f"no frames in {root / folder}: is --real-data right?")
        for files, out in ((train_files, train_set), (select_files, select_set)):
            for dp in files:
                depth = np.asarray(Image.open(dp), dtype=np.float32) / 1000.0
                if folder in RGBD_TRAIN_UNREGISTERED:  # colour withheld: the net sees depth only
                    rgb = np.full(depth.shape + (3,), 0.5, np.float32)
                else:
                    rgb = np.asarray(Image.open(str(dp).replace("_depth.png", "_color.jpg")).convert("RGB"),
                                     dtype=np.float32) / 255.0
                out.append((folder, rgb, depth))
    return train_set, select_set


def crop_stack(frames: list[tuple], h: int, w: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Frames smaller than the crop are dropped; larger ones are kept whole (cropped per step)."""
    return [f for f in frames if f[1].shape[0] >= h and f[1].shape[1] >= w]


def hide(sensor: np.ndarray, rgb: np.ndarray, rng: np.random.Generator, scale: float,
         band: float = 0.0) -> np.ndarray:
    """Self-supervision: hide 5-35 % of the valid sensor depth in sensor-like holes, sized as
    in the whole frame the crop came from (scale 1: a 640-pixel-wide frame). With probability
    `band`, also a straight band 6-24 px wide across the crop at any angle: a long hole whose
    two sides are often one surface (a floor, a wall), where the fill must continue the slope
    rather than pick a side."""
    hidden = make_hole_mask(sensor, rgb, int(rng.integers(1 << 30)), fraction=float(rng.uniform(0.05, 0.35)),
                            scale=scale)
    if rng.random() < band:
        h, w = sensor.shape
        yy, xx = np.mgrid[0:h, 0:w]
        th = rng.uniform(0, np.pi)
        u = (xx - rng.uniform(0.2, 0.8) * w) * np.sin(th) - (yy - rng.uniform(0.2, 0.8) * h) * np.cos(th)
        hidden |= (np.abs(u) < rng.uniform(3, 12) * scale) & (sensor > 0)
    return hidden


# ---------------------------------------------------------------- selection
class Selection:
    """Model selection on held-out rgbd-train frames (never the evaluation frames): the
    evaluation's protocol (seeded sensor-like masks, RMSE on the hidden pixels, pooled per
    folder) against OpenCV's Telea on the same masks. Score: the mean over folders of
    model RMSE / Telea RMSE (lower is better)."""

    def __init__(self, frames: list[tuple], masks: int, seed: int) -> None:
        import cv2

        self.items = []
        for k, (folder, rgb, depth) in enumerate(frames):
            for j in range(masks):
                hidden = make_hole_mask(depth, rgb, seed=seed * 100_003 + k * 31 + j)
                inp = np.where(hidden, 0.0, depth).astype(np.float32)
                mm = np.clip(inp * 1000.0 + 0.5, 0, 65535).astype(np.uint16)
                tel = cv2.inpaint(mm, (mm == 0).astype(np.uint8), 5, cv2.INPAINT_TELEA) / 1000.0
                self.items.append((folder, rgb, inp, depth, hidden, tel.astype(np.float32)))

    @staticmethod
    def _pad(a: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
        return np.pad(a, ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2), mode="edge")

    @torch.no_grad()
    def score(self, net: nn.Module) -> tuple[float, dict[str, float]]:
        net.eval()
        sq: dict[str, list[float]] = {}
        for folder, rgb, inp, gt, hidden, tel in self.items:
            h, w = inp.shape
            r = torch.from_numpy(self._pad(rgb).transpose(2, 0, 1).copy())[None]
            d = torch.from_numpy(self._pad(inp))[None, None]
            pred = net(r, d, (d > 0).float())[0, 0, :h, :w].numpy()
            acc = sq.setdefault(folder, [0.0, 0.0, 0.0])
            acc[0] += float(((pred - gt)[hidden] ** 2).sum())
            acc[1] += float(((tel - gt)[hidden] ** 2).sum())
            acc[2] += float(hidden.sum())
        net.train()
        ratios = {f: math.sqrt(a[0] / max(a[2], 1)) / max(math.sqrt(a[1] / max(a[2], 1)), 1e-9)
                  for f, a in sq.items()}
        return float(np.mean(list(ratios.values()))), ratios


# ---------------------------------------------------------------- training
def sample_batch(pool: list[tuple], n: int, h: int, w: int, rng: np.random.Generator,
                 misalign: float, band: float = 0.0) -> tuple[torch.Tensor, ...]:
    """A batch of random crops with flips, photometric augmentation, colour shifts and
    sensor-like hidden depth. pool items: (kind, rgb, sensor, gt or None); gt None means the
    sensor depth is its own target (real frames: only hidden pixels are learned from)."""
    rgbs, sens, gts, hids, clean = [], [], [], [], []
    for _ in range(n):
        kind, rgb, sensor, gt = pool[int(rng.integers(len(pool)))]
        y0 = int(rng.integers(0, sensor.shape[0] - h + 1))
        x0 = int(rng.integers(0, sensor.shape[1] - w + 1))
        sl = (slice(y0, y0 + h), slice(x0, x0 + w))
        r, s = rgb[sl].copy(), sensor[sl].copy()
        g = s.copy() if gt is None else gt[sl].copy()
        if rng.random() < 0.5:
            r, s, g = r[:, ::-1], s[:, ::-1], g[:, ::-1]
        r = np.clip(np.clip(r, 0, 1) ** rng.uniform(0.6, 1.6) * rng.uniform(0.5, 1.4)
                    * rng.uniform(0.85, 1.15, 3), 0, 1)
        if rng.random() < misalign:  # real RGB-D is never perfectly registered
            dy, dx = (int(v) for v in rng.integers(-3, 4, 2))
            r = np.roll(r, (dy, dx), (0, 1))
        hidden = hide(s, r, rng, max(sensor.shape) / 640.0, band)
        rgbs.append(r.transpose(2, 0, 1))
        sens.append(np.where(hidden, 0.0, s))
        gts.append(g)
        hids.append(hidden)
        clean.append(gt is not None)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a)).astype(np.float32))  # noqa: E731
    return (t(rgbs), t(sens)[:, None], t(gts)[:, None], torch.from_numpy(np.stack(hids))[:, None],
            torch.tensor(clean)[:, None, None, None])


def train(args: argparse.Namespace) -> CompletionNet:
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    real_train, real_select = real_frames(Path(args.real_data), args.holdout)
    pool: list[tuple] = [("real", r, d, None) for _, r, d in crop_stack(real_train, args.crop_h, args.crop_w)]
    n_real = len(pool)
    rng_data = np.random.default_rng(args.seed)
    pool += [("scene", r, s, g) for r, s, g in scene_frames(args.scene_frames, 480, 640, args.seed)]
    pool += [("procedural", *procedural_frame(args.crop_h, args.crop_w, rng_data)) for _ in range(args.frames)]
    weights = np.array([args.real_share / n_real if p[0] == "real"
                        else (1 - args.real_share) / max(len(pool) - n_real, 1) for p in pool])
    weights /= weights.sum()
    selection = Selection(real_select, args.select_masks, args.seed)
    print(f"data: {n_real} real training frames, {len(real_select)} real selection frames "
          f"({len(selection.items)} masked), {len(pool) - n_real} scene/procedural, "
          f"{time.time() - t0:.0f}s", flush=True)
    net = HEADS[args.head]()
    if args.init:
        net.load_state_dict(torch.load(args.init, map_location="cpu"))
        print(f"initialised from {args.init}", flush=True)
    print(f"parameters: {sum(p.numel() for p in net.parameters())}", flush=True)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    rng = np.random.default_rng(args.seed + 1)
    best = (selection.score(net)[0], -1, {k: v.clone() for k, v in net.state_dict().items()})
    print(f"selection score before training (pre-fill alone): {best[0]:.4f}", flush=True)
    t0 = time.time()
    for step in range(args.steps):
        idx = rng.choice(len(pool), args.batch, p=weights)
        rgb, inp, gt, hidden, clean = sample_batch([pool[i] for i in idx], args.batch, args.crop_h,
                                                   args.crop_w, rng, args.misalign, args.band_holes)
        mask = (inp > 0).float()
        # random global scale: the net must be scale-free (real scenes 0.1-10 m)
        s = torch.from_numpy(np.exp(rng.uniform(-0.7, 0.7, (args.batch, 1, 1, 1))).astype(np.float32))
        pred = net(rgb, inp * s, mask) / s
        ok = gt > 0
        # where the target is the sensor itself (real frames) only hidden pixels teach; where it
        # is exact (scene), every pixel does, so measured pixels are denoised too
        w = torch.where(hidden, 4.0, torch.where(clean, 1.0, args.visible_weight)) * ok
        err = torch.log(pred.clamp(min=1e-3)) - torch.log(gt.clamp(min=1e-3))
        loss = args.l1_weight * (w * err.abs()).sum() / w.sum().clamp(min=1.0)
        # the evaluation is RMSE in metres on hidden pixels: squared error there, each sample
        # divided by its median depth (scale-free across samples, absolute within one); squared
        # error hedges at uncertain depth edges where L1 would pick a side
        hid = hidden & ok
        if hid.any():
            med = torch.stack([g[o].median() if o.any() else g.new_tensor(1.0) for g, o in zip(gt, ok)])
            rel = (pred - gt) / med.view(-1, 1, 1, 1)
            loss = loss + (rel[hid] ** 2).mean()
            exact = ok & clean & ~hidden
            if exact.any():
                loss = loss + args.denoise_weight * (rel[exact] ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            el = time.time() - t0
            print(f"step {step}/{args.steps} loss {loss.item():.4f} {el:.0f}s "
                  f"(eta {el / (step + 1) * (args.steps - step - 1):.0f}s)", flush=True)
        if (step + 1) % args.select_every == 0 or step == args.steps - 1:
            score, per = selection.score(net)
            print(f"selection at step {step + 1}: {score:.4f} x Telea ("
                  + ", ".join(f"{k} {v:.3f}" for k, v in per.items()) + ")", flush=True)
            if score < best[0]:
                best = (score, step + 1, {k: v.clone() for k, v in net.state_dict().items()})
                torch.save(best[2], Path(args.out).with_suffix(".pt"))
    print(f"selected step {best[1]} (selection score {best[0]:.4f} x Telea)", flush=True)
    net.load_state_dict(best[2])
    return net


def export(net: CompletionNet, out: Path) -> None:
    net.eval()
    h, w = 4 * MULTIPLE, 5 * MULTIPLE
    args = (torch.rand(1, 3, h, w), torch.rand(1, 1, h, w) + 1.0, torch.ones(1, 1, h, w))
    torch.onnx.export(net, args, str(out), opset_version=17, dynamo=False,
                      input_names=["rgb", "depth", "mask"], output_names=["depth_out"],
                      dynamic_axes={"rgb": {2: "height", 3: "width"}, "depth": {2: "height", 3: "width"},
                                    "mask": {2: "height", 3: "width"},
                                    "depth_out": {2: "height", 3: "width"}})
    print(f"exported {out} ({out.stat().st_size / 1e3:.0f} kB)", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("depth_completion_real.onnx"),
                   help="where to write the model (not models/: these weights are not the shipped ones)")
    p.add_argument("--real-data", type=Path, default=ROOT.parent / "shared" / "data" / "rgbd-train",
                   help="rgbd-train folder (never the evaluation frames)")
    p.add_argument("--holdout", type=float, default=SELECTION_SHARE,
                   help="share of each rgbd-train folder kept for model selection (its last frames)")
    p.add_argument("--real-share", type=float, default=0.9, help="share of samples from real frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=0, help="procedural frames")
    p.add_argument("--scene-frames", type=int, default=120, help="built-in scene frames (640x480)")
    p.add_argument("--crop-h", type=int, default=256)
    p.add_argument("--crop-w", type=int, default=320)
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--misalign", type=float, default=0.5,
                   help="fraction of samples whose colour is shifted 0-3 px against depth")
    p.add_argument("--band-holes", type=float, default=0.3,
                   help="share of samples that also get a straight band hole across the crop")
    p.add_argument("--l1-weight", type=float, default=0.2, help="weight of the log-L1 term")
    p.add_argument("--denoise-weight", type=float, default=0.5,
                   help="weight of the squared error on measured pixels where exact truth exists")
    p.add_argument("--visible-weight", type=float, default=0.1,
                   help="log-L1 weight on measured pixels of real frames (their target is the input)")
    p.add_argument("--select-every", type=int, default=250, help="steps between selection runs")
    p.add_argument("--select-masks", type=int, default=1, help="masks per selection frame")
    p.add_argument("--head", choices=sorted(HEADS), default="blend",
                   help="blend: weigh peel / nearest side / farthest side (+ small residual); "
                        "residual: a bounded log-depth residual on the peel fill")
    p.add_argument("--init", type=Path, help="start from these weights (.pt), e.g. a previous stage")
    args = p.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    net = train(args)
    export(net, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
