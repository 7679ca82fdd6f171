"""Where the package's shared files (config/, launch/, models/) live.

Three install layouts: a colcon install (share/depth_ai_nodes via ament_index),
a source checkout or editable install (next to the package), and `pip install .`
(<prefix>/share/depth_ai_nodes, written by setup.py's data_files).
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = "depth_ai_nodes"


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The folder holding config/, launch/ and models/."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "package.xml").is_file() and (checkout / "config").is_dir():
        return checkout
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # not a colcon install, or ament_index absent
        pass
    prefixed = Path(sys.prefix) / "share" / PACKAGE
    if prefixed.is_dir():
        return prefixed
    raise FileNotFoundError(
        f"cannot find the {PACKAGE} share folder (config/, models/): looked next to the "
        f"package, in the ament index and in {prefixed}; reinstall the package")


def config_path(name: str) -> Path:
    """A file in config/, e.g. config_path('camera.yaml')."""
    return share_dir() / "config" / name


def model_path(name: str) -> Path:
    """A file in models/, e.g. model_path('depth_completion.yaml')."""
    return share_dir() / "models" / name


# the default: the completion model's classical fill, without the network that does not improve
# it on held-out data (models/MODEL_CARD.md); `depth_completion` is the full model
DEFAULT_MODEL_SPEC = "depth_fill_classical.yaml"


def model_spec(value: str = "") -> Path:
    """The model spec a `model` setting names: empty for the shipped default; a path; or the
    name of a spec shipped in models/ or models/specs/, with or without `.yaml` (e.g.
    `depth_fill_classical`, `midas_v21_small`). A name found nowhere comes back as a path, so
    the caller's error names what was asked for."""
    if not value:
        return model_path(DEFAULT_MODEL_SPEC)
    path = Path(value).expanduser()
    if path.exists() or "/" in value or "\\" in value:
        return path
    for folder in (share_dir() / "models", share_dir() / "models" / "specs"):
        for name in (value, f"{value}.yaml"):
            if (folder / name).is_file():
                return folder / name
    return path
