"""pip / setuptools path: builds msg/ with the same CMakeLists that colcon uses.

The ROS 2 message generators come from the PyPI wheels (see pyproject.toml).
`build_ext` stages CMakeLists.txt, package.xml and msg/ into the build folder
(CMake refuses exported include paths inside the source tree, which is where a
`.venv` usually lives), builds the interfaces, then ships
  - the generated Python (depth_ai_nodes/msg/*.py and the typesupport
    extension modules) inside the package, in place for editable installs;
  - the interface libraries (libdepth_ai_nodes__*.so) into <prefix>/lib, the
    folder the ROS wheels put on LD_LIBRARY_PATH: rclpy's typesupport loader
    finds them by name there, as it does in a colcon install/lib.
PyPI has no wheel for two message packages the nodes use, so for each one that is
not importable it also builds the copy under vendor/ (upstream's field list, hence
its type hash) as a top-level package: tf2_msgs (TFMessage: the nodes publish
/tf_static) and point_cloud_interfaces (CompressedPointCloud2: point_cloud_transport's
<cloud>/zstd and <cloud>/zlib). colcon never sees vendor/ (COLCON_IGNORE).
"""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
PKG = "depth_ai_nodes"
# message packages built from vendor/ when not importable (PyPI has no wheels for them)
VENDORED = ("tf2_msgs", "point_cloud_interfaces")


def _ros_prefix() -> Path:
    """The prefix holding the wheels' share/ament_cmake (venv or pip build env)."""
    candidates = []
    try:
        import ament_package  # noqa: F401  (installed by ros-ament-package)

        candidates.append(Path(ament_package.__file__).resolve().parents[4])
    except ImportError:
        pass
    candidates += [Path(sysconfig.get_paths()["data"]), Path(sys.prefix)]
    for prefix in candidates:
        if (prefix / "share" / "ament_cmake" / "cmake").is_dir():
            return prefix
    raise RuntimeError(
        "ROS 2 message generators not found. Install the build requirements first:\n"
        "  pip install ros-kilted-rosidl-default-generators ros-kilted-ament-cmake "
        "ros-kilted-ament-package ros-kilted-ament-cmake-include-directories "
        "ros-kilted-rosidl-core-generators ros-kilted-ament-cmake-ros-core catkin-pkg "
        "ros-kilted-sensor-msgs ros-kilted-std-msgs numpy\n"
        "or build inside a sourced ROS 2 environment with colcon.")


class BuildMessages(build_ext):
    """Runs the CMake interface build instead of compiling Extension sources."""

    def run(self) -> None:  # noqa: D102
        prefix = _ros_prefix()
        inplace = self.inplace or getattr(self, "editable_mode", False)
        # Our messages: generated Python inside the package (in the tree when editable).
        self._build_interfaces(prefix, ROOT, PKG, ROOT / PKG if inplace else Path(self.build_lib) / PKG,
                               inplace, ["-DDEPTH_AI_NODES_MSGS_ONLY=ON"])
        # Message packages PyPI has no wheel for, when no ROS install provides them: each a
        # top-level package beside ours, in site-packages when editable.
        for package in VENDORED:
            if importlib.util.find_spec(package) is None or _is_vendored(package):
                target = (Path(sysconfig.get_paths()["purelib"]) if inplace else Path(self.build_lib)) / package
                self._build_interfaces(prefix, ROOT / "vendor" / package, package, target, inplace, [])
                (target / "VENDORED_BY_DEPTH_AI_NODES").write_text(
                    f"{package} built by depth_ai_nodes (vendor/{package}); a ROS install's "
                    f"{package} on PYTHONPATH takes precedence.\n")
        self._precompile(ROOT if inplace else Path(self.build_lib))

    @staticmethod
    def _precompile(tree: Path) -> None:
        """Compile the numba kernels into TREE's __pycache__ folders, so they ship with the
        package and a node's first start does not wait 15-30 s on the JIT
        (depth_ai_nodes/precompile.py). Never fails the build: without the caches the nodes
        compile on first use and say so."""
        if os.environ.get("DEPTH_AI_NODES_NO_PRECOMPILE"):
            return
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH", "")) if p)
        done = subprocess.run([sys.executable, "-m", "depth_ai_nodes.precompile"], cwd=tree, env=env)
        if done.returncode != 0:
            print("depth_ai_nodes: numba kernels not precompiled; nodes compile them on first use",
                  file=sys.stderr)

    def _build_interfaces(self, prefix: Path, source: Path, package: str, target: Path,
                          inplace: bool, cmake_args: list[str]) -> None:
        """Stage SOURCE's interface package (CMakeLists.txt, package.xml, msg/), build it with
        CMake, ship its Python to TARGET and its interface libraries to <prefix>/lib."""
        work = Path(self.build_temp).resolve() / package
        src, bld, inst = work / "src", work / "build", work / "install"
        if src.exists():
            shutil.rmtree(src)
        src.mkdir(parents=True)
        for name in ("CMakeLists.txt", "package.xml"):
            shutil.copy2(source / name, src / name)
        shutil.copytree(source / "msg", src / "msg")
        bld.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
            env[var] = os.pathsep.join(p for p in (str(prefix), env.get(var, "")) if p)
        subprocess.check_call(
            ["cmake", str(src), *cmake_args, "-DBUILD_TESTING=OFF",
             f"-DPython3_EXECUTABLE={sys.executable}", f"-DCMAKE_INSTALL_PREFIX={inst}",
             "-DCMAKE_BUILD_TYPE=Release"], cwd=bld, env=env)
        subprocess.check_call(["cmake", "--build", ".", "-j", str(os.cpu_count() or 2)],
                              cwd=bld, env=env)
        subprocess.check_call(["cmake", "--install", "."], cwd=bld, env=env)

        generated = next(inst.glob(f"lib/python3*/site-packages/{package}"))
        (target / "msg").mkdir(parents=True, exist_ok=True)
        for f in (generated / "msg").glob("*.py"):
            shutil.copy2(f, target / "msg" / f.name)
        if not (target / "__init__.py").exists():
            (target / "__init__.py").write_text("")
        for f in generated.glob("*.so"):
            shutil.copy2(f, target / f.name)
        libs = sorted(str(p) for p in (inst / "lib").glob(f"lib{package}__*.so"))
        if inplace:
            # Editable installs skip install_data: put the libraries in the
            # target environment's lib/ (pip runs this with its interpreter).
            (Path(sys.prefix) / "lib").mkdir(exist_ok=True)
            for lib in libs:
                shutil.copy2(lib, Path(sys.prefix) / "lib")
        else:
            # Same list object install_data holds: filled now, installed after build.
            self.distribution.data_files.append(("lib", libs))


def _is_vendored(package: str) -> bool:
    """True when the importable PACKAGE is the one an earlier install of ours built
    (rebuild it), False for a real ROS install's (leave it alone)."""
    spec = importlib.util.find_spec(package)
    origin = Path(spec.origin) if spec and spec.origin else None
    return origin is not None and (origin.parent / "VENDORED_BY_DEPTH_AI_NODES").exists()


def _share_files() -> list[tuple[str, list[str]]]:
    """config/, launch/ and models/ under <prefix>/share/depth_ai_nodes, as colcon installs them."""
    out: dict[str, list[str]] = {}
    for folder in ("config", "launch", "models"):
        for p in sorted((ROOT / folder).rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                rel = p.relative_to(ROOT)
                out.setdefault(f"share/{PKG}/{rel.parent.as_posix()}", []).append(str(rel))
    return list(out.items())


setup(
    name=PKG,
    # One placeholder extension makes setuptools run build_ext and tag the
    # wheel as platform-specific; BuildMessages does the real work.
    ext_modules=[Extension(f"{PKG}._interfaces", sources=[])],
    cmdclass={"build_ext": BuildMessages},
    data_files=_share_files(),
)
