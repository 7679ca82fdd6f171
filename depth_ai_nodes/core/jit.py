"""Which numba kernels a start will compile, so a node can say so instead of looking dead.

numba caches compiled kernels next to the package (__pycache__, or NUMBA_CACHE_DIR). A wheel
build and a colcon install fill that cache (depth_ai_nodes/precompile.py), so a first start
takes about a second. Where it is empty anyway (an install from a wheel built without it, an
unwritable site-packages, NUMBA_CACHE_DIR pointing elsewhere) the first start compiles
everything it touches: 10-30 s on a 2-core CPU. `uncompiled` finds the cached modules whose
kernels have no cache index yet (a cheap file check, nothing compiles).
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import Iterable

__all__ = ["uncompiled", "FIRST_START_SECONDS"]

FIRST_START_SECONDS = "10-30 s on a 2-core CPU"


def _index_path(dispatcher: object) -> str | None:
    cache = getattr(dispatcher, "_cache", None)
    cache_file = getattr(cache, "_cache_file", None)
    return getattr(cache_file, "_index_path", None)


def uncompiled(modules: Iterable[ModuleType]) -> list[str]:
    """The modules (short names) among `modules` that have cached numba kernels but not one of
    them on disk yet: a fresh install, whose first start compiles them. (Helper kernels only
    ever compiled inside others never get an index of their own, so a module counts as
    compiled as soon as any of its kernels has one.)"""
    cold = []
    for mod in modules:
        paths = [p for p in (_index_path(obj) for obj in vars(mod).values()) if p is not None]
        if paths and not any(os.path.exists(p) for p in paths):
            cold.append(mod.__name__.rsplit(".", 1)[-1])
    return cold
