"""launch/*.launch.py and config/*.yaml, checked without the launch package.

The launch files are parsed (ast), never imported: every executable they start
is a console script and a colcon `ros2 run` target, every parameter file
exists, every LaunchConfiguration is declared and every declared argument is
used, pipeline.launch.py passes exactly the arguments its included files
declare (with the same defaults), and each launch file agrees with the
pipeline table the runner uses (executable, parameter file, namespace).
config/*.yaml: every parameter is declared by its node's PARAMETERS table with
a value of the declared type (ROS refuses an int for a double at start-up),
and every declared parameter is listed (the config files are the documented
defaults; `depth-ai run` and the launch files read them).
"""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from depth_ai_nodes.pipeline import NODES, Choices, load_params_file, node_parameters, plan
from harness import REPO

LAUNCH = REPO / "launch"
LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.py"))
SPEC_BY_EXE = {n.executable: n for n in NODES}
ROS_BUILTIN_PARAMS = {"use_sim_time"}


def console_scripts() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


def ros2_run_targets() -> set[str]:
    text = (REPO / "CMakeLists.txt").read_text()
    match = re.search(r"foreach\(_exe ([^)]*)\)", text)
    return set(match.group(1).split()) if match else set()


class LaunchFile:
    """What a launch file names, read from its syntax tree."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.constants: dict[str, object] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                    node.targets[0], ast.Name):
                try:
                    self.constants[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
        self.arguments: dict[str, tuple] = dict(self.constants.get("ARGUMENTS", {}))
        self.includes: dict[str, tuple] = dict(self.constants.get("INCLUDES", {}))
        self.used: set[str] = set()
        self.nodes: list[dict] = []
        self.yaml_files: set[str] = set()
        for call in (n for n in ast.walk(self.tree) if isinstance(n, ast.Call)):
            name = getattr(call.func, "id", getattr(call.func, "attr", ""))
            first = call.args[0] if call.args else None
            if name == "LaunchConfiguration" and isinstance(first, ast.Constant):
                self.used.add(first.value)
            elif name == "DeclareLaunchArgument" and isinstance(first, ast.Constant):
                self.arguments.setdefault(first.value, ("?", ""))
            elif name == "Node":
                self.nodes.append(self._node(call))
        for const in (n for n in ast.walk(self.tree) if isinstance(n, ast.Constant)):
            if isinstance(const.value, str) and re.fullmatch(r"[\w.-]+\.yaml", const.value):
                self.yaml_files.add(const.value)
        for names in self.includes.values():
            self.used.update(names)

    @staticmethod
    def _node(call: ast.Call) -> dict:
        info: dict = {"params": set()}
        for kw in call.keywords:
            if isinstance(kw.value, ast.Constant):
                info[kw.arg] = kw.value.value
            elif isinstance(kw.value, ast.Call) and getattr(kw.value.func, "id", "") == \
                    "LaunchConfiguration":
                info[kw.arg] = ("arg", kw.value.args[0].value)
            if kw.arg == "parameters" and isinstance(kw.value, ast.List):
                for item in kw.value.elts:
                    if isinstance(item, ast.Dict):
                        info["params"].update(k.value for k in item.keys
                                              if isinstance(k, ast.Constant))
        return info


def test_every_launch_file_is_there():
    names = {p.name for p in LAUNCH_FILES}
    assert {"camera.launch.py", "inference.launch.py", "lidar.launch.py", "fusion.launch.py",
            "pipeline.launch.py"} <= names, names


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_only_things_that_exist(path):
    lf = LaunchFile(path)
    assert "generate_launch_description" in {f.name for f in lf.tree.body
                                             if isinstance(f, ast.FunctionDef)}
    undeclared = lf.used - set(lf.arguments)
    assert not undeclared, f"{path.name}: LaunchConfiguration of undeclared {undeclared}"
    unused = set(lf.arguments) - lf.used
    assert not unused, f"{path.name}: arguments declared but never used: {unused}"
    for name in lf.yaml_files:
        assert (REPO / "config" / name).is_file(), f"{path.name} names config/{name}: missing"
    scripts, targets = console_scripts(), ros2_run_targets()
    for node in lf.nodes:
        exe = node.get("executable")
        assert node.get("package") == "depth_ai_nodes", node
        assert exe in scripts, f"{path.name}: {exe} is not a console script in pyproject.toml"
        assert exe in targets, f"{path.name}: {exe} is not installed for `ros2 run` (CMakeLists)"
        spec = SPEC_BY_EXE[exe]
        assert lf.yaml_files == {spec.params_file}, (
            f"{path.name}: parameter files {lf.yaml_files}, the runner uses {spec.params_file}")
        ns = node.get("namespace")
        if isinstance(ns, tuple):  # a launch argument: its default is the runner's namespace
            assert lf.arguments[ns[1]][0] == spec.namespace, (path.name, ns, spec.namespace)
        assert isinstance(node.get("respawn"), tuple), f"{path.name}: respawn is not an argument"
        declared = node_parameters(spec)
        if declared is not None:
            unknown = node["params"] - set(declared) - ROS_BUILTIN_PARAMS
            assert not unknown, f"{path.name}: {exe} does not declare {unknown}"
    if lf.nodes:  # the large-message DDS profile reaches every node started
        calls = {getattr(c.func, "id", "") for c in ast.walk(lf.tree) if isinstance(c, ast.Call)}
        assert "dds_environment_actions" in calls, f"{path.name} does not set the DDS profile"
    for file, names in lf.includes.items():
        included = LaunchFile(LAUNCH / file)
        assert set(names) == set(included.arguments), (
            f"{path.name} passes {sorted(names)} to {file}, which declares "
            f"{sorted(included.arguments)}")
        for name in names:
            assert lf.arguments[name][0] == included.arguments[name][0], (
                f"default of {name}: {lf.arguments[name][0]!r} in {path.name}, "
                f"{included.arguments[name][0]!r} in {file}")


def test_launch_files_start_every_pipeline_node_once():
    started = [n["executable"] for p in LAUNCH_FILES for n in LaunchFile(p).nodes]
    assert sorted(started) == sorted(n.executable for n in NODES)


def _type_ok(value: object, default: object) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, float)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)):
        return isinstance(value, list) and (not default or not value or all(
            _type_ok(v, default[0]) for v in value))
    return True


@pytest.mark.parametrize("spec", NODES, ids=lambda s: s.executable)
def test_config_file_matches_the_node_parameter_table(spec):
    declared = node_parameters(spec)
    if declared is None:
        pytest.skip(f"{spec.executable} ({spec.module}) is not written yet")
    path = spec.params_path()
    assert path.is_file(), f"config/{spec.params_file} for {spec.executable} is missing"
    values = load_params_file(path, spec.node_name)
    unknown = set(values) - set(declared) - ROS_BUILTIN_PARAMS
    assert not unknown, f"config/{spec.params_file}: {spec.executable} does not declare {unknown}"
    for name, value in values.items():
        if name in declared:
            assert _type_ok(value, declared[name]), (
                f"config/{spec.params_file}: {name}: {value!r} is not of the declared type "
                f"of {declared[name]!r}")
    missing = set(declared) - set(values)
    assert not missing, (f"config/{spec.params_file} does not list {sorted(missing)}; the "
                         f"defaults as a file: python -m depth_ai_nodes.pipeline config {spec.key}")


def test_runner_sets_only_declared_parameters():
    for lidar in ("synthetic", "kitti", "ouster"):
        for planned in plan(Choices(lidar=lidar, lidar_path="/x", model="/m.yaml",
                                    file_path="/f.bag", use_sim_time=True)):
            declared = node_parameters(planned.spec)
            if declared is None:
                continue
            unknown = set(planned.params) - set(declared) - ROS_BUILTIN_PARAMS
            assert not unknown, f"depth-ai run sets {unknown} on {planned.spec.executable}"


def test_launch_files_set_the_same_dds_environment_as_the_runner():
    from depth_ai_nodes.launch_support import dds_settings
    from depth_ai_nodes.ros.dds import dds_environment

    runner_env = dds_environment(base={})
    for name, value in dds_settings().items():
        assert runner_env[name] == value, name
    assert Path(dds_settings()["FASTDDS_DEFAULT_PROFILES_FILE"]).is_file()


def test_multi_host_and_compressed_arguments_switch_what_the_runner_flags_set():
    """multi_host:=true / compressed:=true give a node what `depth-ai run --multi-host` /
    `--compressed` give it; false leaves the node's default (launch_support.switched_values)."""
    from depth_ai_nodes.launch_support import switched_values
    from depth_ai_nodes.pipeline import SWITCHES

    for spec in NODES:
        declared = node_parameters(spec)
        values = switched_values(spec.key)
        expected = {name for table in SWITCHES.values() for name in table.get(spec.key, {})}
        assert set(values) == expected, spec.key
        for name, (arg, on, off) in values.items():
            assert name in declared, f"{arg} sets {name}, which {spec.executable} does not declare"
            assert off == declared[name] and _type_ok(on, off), (spec.key, name, on, off)
            assert SWITCHES[arg][spec.key][name] == on
    assert set(SWITCHES) == {"multi_host", "compressed"}
    for path in LAUNCH_FILES:
        lf = LaunchFile(path)
        assert {"multi_host", "compressed"} <= set(lf.arguments), path.name
        assert lf.arguments["multi_host"][0] == lf.arguments["compressed"][0] == "false", path.name
        calls = [c for c in ast.walk(lf.tree) if isinstance(c, ast.Call)
                 and getattr(c.func, "id", "") == "switched_parameters"]
        for node in lf.nodes:
            key = SPEC_BY_EXE[node["executable"]].key
            assert [c.args[0].value for c in calls] == [key], f"{path.name}: switched_parameters({key!r})"


def test_multi_host_launch_environment_is_the_runners():
    from depth_ai_nodes.launch_support import multi_host_settings
    from depth_ai_nodes.ros.dds import dds_environment

    runner = dds_environment(base={}, multi_host=True)
    settings = multi_host_settings()
    assert Path(settings["FASTDDS_DEFAULT_PROFILES_FILE"]).name == "fastdds_multi_host.xml"
    assert settings["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"
    for name, value in settings.items():
        assert runner[name] == value, name


def test_switched_parameters_evaluate_to_the_switch_tables(monkeypatch):
    """switched_parameters' expressions, evaluated the way launch does (PythonExpression joins
    its parts, LaunchConfiguration gives the argument's text, eval), give the runner's values
    when the argument is true and the node's defaults when false. launch is not installable
    here: minimal stand-ins record what the launch file would be given."""
    import sys
    import types

    from depth_ai_nodes.launch_support import switched_parameters, switched_values

    class Expr:
        def __init__(self, parts):
            self.parts = parts

    class Value:
        def __init__(self, value, value_type):
            self.value, self.value_type = value, value_type

    class Arg:
        def __init__(self, text):
            self.text = text

    subs = types.ModuleType("launch.substitutions")
    subs.PythonExpression = Expr
    params = types.ModuleType("launch_ros.parameter_descriptions")
    params.ParameterValue = Value
    for name, module in (("launch", types.ModuleType("launch")), ("launch.substitutions", subs),
                         ("launch_ros", types.ModuleType("launch_ros")),
                         ("launch_ros.parameter_descriptions", params)):
        monkeypatch.setitem(sys.modules, name, module)

    def evaluate(v: Value) -> object:
        text = eval("".join(p.text if isinstance(p, Arg) else p for p in v.value.parts))
        if v.value_type is bool:  # launch_ros coerces 'true' / 'false' for value_type=bool
            assert text in ("true", "false"), text
            return text == "true"
        return v.value_type(text)

    for spec in NODES:
        for flags in ({"multi_host": "true", "compressed": "false"}, {"multi_host": "false", "compressed": "True"},
                      {"multi_host": "false", "compressed": "false"}):
            got = switched_parameters(spec.key, **{k: Arg(v) for k, v in flags.items()})
            for name, (arg, on, off) in switched_values(spec.key).items():
                want = on if flags[arg].lower() == "true" else off
                assert evaluate(got[name]) == want, (spec.key, name, flags)
