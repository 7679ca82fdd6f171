"""Experiment (issue #14, 2026-12-06): the whole fusion split over two threads, measured.

    python bench/experiment_fusion_two_threads.py

The existing nogil kernels run on the two halves of KITTI 000000 from two Python threads, each
half with its own z-buffer, merged over the second half's in-view pixels; then the occlusion +
lookup pass over each half's in-view points on two threads (a copy of the lookup kernel
without its z-buffer reset, which would race), then one reset. Checks the rows are
bit-identical to Projector.fuse and times both, interleaved. Not used by the nodes.
"""
import inspect, sys, time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from depth_ai_nodes.ros.node_main import tune_malloc
tune_malloc()
import depth_ai_nodes.core.projection as P
from numba import njit
src = inspect.getsource(P._lookup_kernel.py_func)
cut = src.index("    for k in range(idx.shape[0]):\n        p = pix[idx[k]]\n        zbuf[p] = np.inf")
src2 = src[:cut] + "    return occluded\n"
src2 = src2.replace("def _lookup_kernel(", "def _lookup_noreset(")
src2 = "\n".join(l for l in src2.splitlines() if not l.startswith("@njit"))
ns = dict(P.__dict__)
exec(src2, ns)
lookup_noreset = njit(nogil=True)(ns["_lookup_noreset"])

@njit(nogil=True)
def merge(pix, idx, zb_from, co_from, zb_to, co_to, w, cw):
    for k in range(idx.shape[0]):
        p = pix[idx[k]]
        if zb_from[p] < zb_to[p]:
            zb_to[p] = zb_from[p]
        zb_from[p] = np.inf
        iv = p // w
        c = (iv >> 2) * cw + ((p - iv * w) >> 2)
        if co_from[c] < co_to[c]:
            co_to[c] = co_from[c]
        co_from[c] = np.inf

@njit(nogil=True)
def reset(pix, idx, zb, co, w, cw):
    for k in range(idx.shape[0]):
        p = pix[idx[k]]
        zb[p] = np.inf
        iv = p // w
        co[(iv >> 2) * cw + ((p - iv * w) >> 2)] = np.inf

from depth_ai_nodes.core.calibration import parse_kitti_calib
from depth_ai_nodes.lidar.kitti import read_kitti_bin
from PIL import Image
D = str(Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kitti")
if not Path(D, "velodyne", "000000.bin").is_file():
    sys.exit(f"needs the KITTI sample in {D} (../shared/data)")
pts = read_kitti_bin(f"{D}/velodyne/000000.bin")
T, K = parse_kitti_calib(f"{D}/calib/000000.txt").lidar_to_camera(2)
pil = Image.open(f"{D}/image_2/000000.png"); rgb = np.asarray(pil.convert("RGB")); ir = np.asarray(pil.convert("L"))
h, w = ir.shape
x, y, z, inten = pts["x"], pts["y"], pts["z"], pts["intensity"]
proj = P.Projector(P.Intrinsics.from_k(K, w, h), min_depth=0.1, max_depth=200.0, splat_px=2)
i = proj.intr
zb2 = np.full_like(proj._zbuf, np.inf); co2 = np.full_like(proj._coarse, np.inf)
pool = ThreadPoolExecutor(2)
M = np.ascontiguousarray(T, dtype=np.float64)

def fuse2():
    n = x.shape[0]; half = n // 2
    out = np.empty((n, 6), np.float32); depth = np.empty(n, np.float32); pix = np.empty(n, np.int32); idx = np.empty(n, np.int32)
    def pack(lo, hi, zb, co):
        return P._project_pack_kernel(x[lo:hi], y[lo:hi], z[lo:hi], inten[lo:hi], M, i.fx, i.fy, i.cx, i.cy, i.dist, i.model, i.r2_max,
                                      w, h, proj.min_depth, proj.max_depth, out[lo:hi], depth[lo:hi], pix[lo:hi], idx[lo:hi], zb, co, proj._cw)
    f = pool.submit(pack, half, n, zb2, co2)
    a = pack(0, half, proj._zbuf, proj._coarse)
    b = f.result()
    idx[half:half + b] += half
    ida, idb = idx[:a], idx[half:half + b]
    merge(pix, idb, zb2, co2, proj._zbuf, proj._coarse, w, proj._cw)
    visible = np.zeros(n, np.bool_)
    def look(ix):
        return lookup_noreset(pix, ix, depth, w, h, proj.splat_px, proj.rel_tol, proj.abs_tol, proj._zbuf, proj._coarse, proj._cw,
                              visible, ir, np.float32(1.0), True, rgb, True, proj._dummy_ref, False, out, out.view(np.uint32))
    f = pool.submit(look, idb)
    look(ida); f.result()
    reset(pix, ida, proj._zbuf, proj._coarse, w, proj._cw); reset(pix, idb, proj._zbuf, proj._coarse, w, proj._cw)
    return out

def fuse1():
    rows, _ = proj.fuse(x, y, z, inten, T, ir, rgb)
    return rows

a1, a2 = fuse1(), fuse2()
print("identical:", np.array_equal(a1.view(np.uint32), a2.view(np.uint32)))
for name, fn in (("one thread", fuse1), ("two threads", fuse2), ("one thread", fuse1), ("two threads", fuse2)):
    for _ in range(20): fn()
    ts = []
    for _ in range(300):
        t0 = time.perf_counter(); r = fn(); r.tobytes(); ts.append(time.perf_counter() - t0)
    print(name, f"median {1e3*np.median(ts):.3f} ms (with the message copy)")
t1, t2 = [], []
for _ in range(600):
    t0 = time.perf_counter(); fuse1(); t1.append(time.perf_counter() - t0)
    t0 = time.perf_counter(); fuse2(); t2.append(time.perf_counter() - t0)
print(f"interleaved, fusion only: one thread {1e3*np.median(t1):.3f} ms, two threads {1e3*np.median(t2):.3f} ms, ratio {np.median(t1)/np.median(t2):.2f}x")
