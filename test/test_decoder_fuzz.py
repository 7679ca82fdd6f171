"""Seeded mutation fuzzing of the compressed-stream decoders (core/compressed.py and
core/cloud_compression.py), without DDS: whatever bytes arrive, a decoder returns what its
message describes or raises `Rejected`, never anything else (an IndexError out of a numba
kernel, a MemoryError from a size a header made up, a library's own exception type) and never
takes long. The nodes' message-level fuzzing is test_fuzz.py; this reaches the bytes the
plugins' formats put inside those messages.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from depth_ai_nodes.core import cloud_compression as cc
from depth_ai_nodes.core.compressed import (decode_compressed, decode_compressed_depth, encode_compressed,
                                            encode_compressed_depth)
from depth_ai_nodes.core.rejection import Rejected

ROUNDS = 400


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to three random edits: flipped bits, overwritten runs, a truncation, inserted or
    repeated bytes; half the time the first 16 bytes (the headers) are the target."""
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 5))
        n = len(b)
        if n == 0:
            b += bytes(rng.integers(0, 256, 8, dtype=np.uint8))
            continue
        at = int(rng.integers(0, min(n, 16))) if rng.random() < 0.5 else int(rng.integers(0, n))
        if kind == 0:
            b[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            k = int(rng.integers(1, 9))
            b[at:at + k] = bytes(rng.integers(0, 256, len(b[at:at + k]), dtype=np.uint8))
        elif kind == 2:
            del b[int(rng.integers(0, n)):]
        elif kind == 3:
            b[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 33)), dtype=np.uint8))
        else:
            b[at:at] = b[at:at + int(rng.integers(1, 64))] * int(rng.integers(1, 4))
    return bytes(b)


def fuzz(decode, payload: bytes, check, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    outcome = {"rejected": 0, "decoded": 0}
    for _ in range(ROUNDS):
        bad = mutate(payload, rng)
        t0 = time.perf_counter()
        try:
            check(decode(bad))
            outcome["decoded"] += 1
        except Rejected:
            outcome["rejected"] += 1
        assert time.perf_counter() - t0 < 2.0, f"one decode of {len(bad)} bytes took over 2 s"
    return outcome


def _depth() -> np.ndarray:
    rng = np.random.default_rng(5)
    d = (1200 + 3 * np.arange(96)[None, :] + rng.integers(-2, 3, (64, 96))).astype(np.uint16)
    d[rng.uniform(size=d.shape) < 0.1] = 0
    return d


@pytest.mark.parametrize("fmt", ["zstd", "zlib"])
def test_mutated_compressed_clouds_decode_to_their_size_or_are_rejected(fmt):
    rng = np.random.default_rng(2)
    data = rng.normal(0, 10, 3000).astype(np.float32).tobytes()
    payload = cc.encode(data, fmt, 1)

    def check(out: bytes) -> None:
        assert len(out) == len(data)   # whatever decodes has the size the description gives

    outcome = fuzz(lambda b: cc.decode(fmt, b, len(data)), payload, check, seed=11)
    assert outcome["rejected"] > ROUNDS // 2, outcome


@pytest.mark.parametrize("fmt", ["png", "rvl"])
def test_mutated_compressed_depth_decodes_to_an_image_or_is_rejected(fmt):
    form, payload = encode_compressed_depth(_depth(), "16UC1", fmt)

    def check(out) -> None:
        encoding, arr = out
        assert encoding == "16UC1" and arr.dtype == np.uint16 and arr.ndim == 2

    outcome = fuzz(lambda b: decode_compressed_depth(form, b), payload, check, seed=12)
    assert outcome["rejected"] > 0, outcome


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_mutated_compressed_images_decode_to_an_image_or_are_rejected(fmt):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    form, payload = encode_compressed(rgb, "rgb8", fmt)

    def check(out) -> None:
        encoding, arr = out
        assert arr.dtype == np.uint8 and arr.ndim in (2, 3)

    outcome = fuzz(lambda b: decode_compressed(form, b), payload, check, seed=13)
    assert outcome["rejected"] > 0, outcome
