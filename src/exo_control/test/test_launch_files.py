"""Launch files and parameter YAMLs against the graph description (exo_control.graph).

The launch files are compiled and inspected (every executable exists, every LaunchConfiguration
is declared, every launch argument is named like the parameter it sets), and the YAMLs are
validated against the nodes' own configuration classes. Where the colcon overlay is sourced
(``tools/in_overlay.sh``), the launch files are also evaluated with the launch API: the nodes
each one starts, and their parameter files, must be the description's.
"""

import ast
import dataclasses
import importlib.metadata
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from exo_common.params import config_from_mapping, field_specs
from exo_control.actuator import ActuatorNodeConfig, SimulatedActuatorConfig
from exo_control.assistance import AssistanceConfig
from exo_control.controller import ControllerConfig
from exo_control.force_loop import ForceLoopConfig
from sensor_msgs.msg import JointState

from exo_msgs.msg import ActuatorState, AssistanceCommand, ControllerState, HipMomentEstimate

PACKAGE = Path(__file__).resolve().parents[1]
WORKSPACE = PACKAGE.parents[1]
BRINGUP = WORKSPACE / "src" / "exo_bringup"
LAUNCH_FILES = sorted(PACKAGE.glob("launch/*.launch.py")) + sorted(
    BRINGUP.glob("launch/*.launch.py")) + sorted((WORKSPACE / "launch").glob("*.launch.py"))
OTHER_PACKAGE_EXECUTABLES = {("k2muse_inference", "hip_moment_estimator"),
                             ("exo_hardware", "hip_angle_publisher")}


def console_scripts():
    return {ep.name for ep in importlib.metadata.distribution("exo_control").entry_points
            if ep.group == "console_scripts"}


def string_keyword(call, name):
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def calls(tree, func_name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == func_name]


def declared_arguments(tree):
    """Names of DeclareLaunchArgument(...) plus keys of ARGUMENT-style dicts fed to it."""
    names = {c.args[0].value for c in calls(tree, "DeclareLaunchArgument")
             if c.args and isinstance(c.args[0], ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and node.targets[0].id.endswith("ARGUMENTS"):
            names |= {k.value for k in node.value.keys}
    return names


def test_there_are_the_expected_launch_files():
    names = {p.name for p in LAUNCH_FILES}
    assert {"assist.launch.py", "replay.launch.py", "exo_system.launch.py"} <= names


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_compiles_and_is_consistent(path):
    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    compile(tree, str(path), "exec")
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body)
    scripts = console_scripts()
    for node_call in calls(tree, "Node"):
        package = string_keyword(node_call, "package")
        executable = string_keyword(node_call, "executable")
        if package is None:  # a driver named by a launch argument
            continue
        if package == "exo_control":
            assert executable in scripts, f"{path.name}: no console script {executable}"
        else:
            assert (package, executable) in OTHER_PACKAGE_EXECUTABLES
    used = {c.args[0].value for c in calls(tree, "LaunchConfiguration")
            if c.args and isinstance(c.args[0], ast.Constant)}
    used |= set(re.findall(r'arg\("(\w+)"\)', source))
    undeclared = used - declared_arguments(tree)
    assert not undeclared, f"{path.name}: undeclared launch arguments {undeclared}"
    for name in re.findall(r'"(\w+\.(?:yaml|launch\.py))"', source):
        folder = "config" if name.endswith(".yaml") else "launch"
        assert any((package / folder / name).is_file() for package in (PACKAGE, BRINGUP)), \
            f"{path.name} refers to missing {name}"


def _argument_read(value):
    """The launch argument a parameter value reads directly (through ParameterValue), if any."""
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "ParameterValue":
        value = value.args[0]
    if (isinstance(value, ast.Call) and getattr(value.func, "id", None) in
            ("arg", "LaunchConfiguration") and isinstance(value.args[0], ast.Constant)):
        return value.args[0].value
    return None


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_argument_is_named_like_the_parameter_it_sets(path):
    """``gain:=`` sets ``gain``; a prefix may say whose (``record_output`` sets ``output``)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values, strict=True):
            argument = _argument_read(value)
            if argument is not None and isinstance(key, ast.Constant):
                assert argument == key.value or argument.endswith("_" + key.value), \
                    f"{path.name}: argument {argument} sets parameter {key.value}"


def test_replay_launch_forwards_every_graph_argument_to_assist_launch():
    assist = declared_arguments(ast.parse((PACKAGE / "launch/assist.launch.py").read_text()))
    replay = declared_arguments(ast.parse((PACKAGE / "launch/replay.launch.py").read_text()))
    for name in ("trial_file", "rate_scale", "loop", "start_offset_s", "model_folder", "backend",
                 "side", "gain"):
        assert name in replay
    assert {"model_folder", "backend", "side", "gain", "actuator_executable"} <= assist


YAML_CONFIGS = {
    "assistance.yaml": ("assistance_profile", [AssistanceConfig]),
    "controller.yaml": ("admittance_controller", [ControllerConfig]),
    "actuator.yaml": ("simulated_actuator", [ActuatorNodeConfig, ForceLoopConfig]),
}
NESTED_CONFIGS = {"actuator.yaml": {"sim": SimulatedActuatorConfig}}  # prefix "sim."


def yaml_parameters(name):
    node, _ = YAML_CONFIGS[name]
    return yaml.safe_load((PACKAGE / "config" / name).read_text())[node]["ros__parameters"]


@pytest.mark.parametrize("name", YAML_CONFIGS)
def test_parameter_yaml_is_complete_and_valid(name):
    values = yaml_parameters(name)
    _, config_types = YAML_CONFIGS[name]
    covered = set()
    for config_type in config_types:
        fields = field_specs(config_type)
        config_from_mapping(config_type, {k: v for k, v in values.items() if k in fields})
        covered |= set(fields)
    for prefix, config_type in NESTED_CONFIGS.get(name, {}).items():
        nested = values.get(prefix, {})
        config_from_mapping(config_type, nested)
        assert set(nested) == set(field_specs(config_type)), f"{name}: {prefix}"
        covered.add(prefix)
    assert set(values) == covered, f"{name}: unknown {set(values) - covered}," \
                                   f" missing {covered - set(values)}"


def test_fast_loop_and_simulated_plant_agree_on_the_transmission():
    actuator = yaml_parameters("actuator.yaml")
    for name in ("gear_ratio", "spool_radius_m"):
        assert actuator[name] == actuator["sim"][name]
    assert yaml_parameters("assistance.yaml")["moment_arm_m"] == actuator["sim"]["hip_moment_arm_m"]


def test_yaml_defaults_match_code_defaults_for_the_controller():
    """The shipped YAML is the tested configuration: same as the dataclass defaults."""
    assert dataclasses.asdict(ControllerConfig()) == yaml_parameters("controller.yaml")


def test_setup_installs_config_launch_and_plot_layouts():
    setup = (PACKAGE / "setup.py").read_text()
    for pattern in ('"config/*.yaml"', '"launch/*.launch.py"', '"config/*.perspective"',
                    '"config/*.xml"'):
        assert pattern in setup
    assert list(PACKAGE.glob("config/*.perspective")) and list(PACKAGE.glob("config/*.xml"))


def plotted_fields():
    """(topic, field) pairs plotted by the rqt perspective and the PlotJuggler layout."""
    pairs = []
    perspective = json.loads((PACKAGE / "config/exo_assistance.perspective").read_text())
    for group in perspective["groups"]["pluginmanager"]["groups"].values():
        for path in ast.literal_eval(group["groups"]["plugin"]["keys"]["topics"]["repr"]):
            topic, _, field = path.rpartition("/")
            pairs.append((topic, re.sub(r"\[\d+\]$", "", field)))
    layout = ET.parse(PACKAGE / "config/exo_assistance_plotjuggler.xml")
    for curve in layout.iter("curve"):
        parts = curve.get("name").split("/")
        if parts[1] == "joint_states":  # PlotJuggler: /joint_states/<joint>/<field>
            pairs.append(("/joint_states", parts[3]))
        else:
            pairs.append(("/" + "/".join(parts[1:-1]), parts[-1]))
    return pairs


def test_plot_layouts_plot_existing_fields_of_the_graph_topics():


    types = {"/hip_moment/estimate": HipMomentEstimate, "/joint_states": JointState,
             "/assistance/command": AssistanceCommand, "/controller/state": ControllerState,
             "/actuator/state": ActuatorState}
    pairs = plotted_fields()
    assert {topic for topic, _ in pairs} == set(types)
    for topic, field in pairs:
        assert field in types[topic].get_fields_and_field_types(), (topic, field)


def _started_nodes(entities, context):
    """The Node actions a launch would start, substitutions performed, includes followed."""
    from launch_ros.actions import Node

    for entity in entities:
        condition = getattr(entity, "condition", None)
        if condition is not None and not condition.evaluate(context):
            continue
        if isinstance(entity, Node):
            entity._perform_substitutions(context)  # what Node.execute does before starting
            yield entity
        else:
            yield from _started_nodes(entity.visit(context) or [], context)


def _share_relative(path):
    """(package, path in its share folder) of an installed parameter file; None otherwise."""
    parts = Path(path).parts
    if "share" not in parts:
        return None
    index = len(parts) - 1 - parts[::-1].index("share")
    return parts[index + 1], "/".join(parts[index + 2:])


def launched(launch_file, **arguments):
    """{node name: (package, executable, parameter files)} that ``launch_file`` starts."""
    from launch import LaunchContext
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions

    context = LaunchContext()
    context.launch_configurations.update(arguments)
    include = IncludeLaunchDescription(PythonLaunchDescriptionSource(str(launch_file)))
    nodes = {}
    for node in _started_nodes([include], context):
        package, executable = (perform_substitutions(context, normalize_to_list_of_substitutions(
            value)) for value in (node.node_package, node.node_executable))
        files = [_share_relative(path) for path, is_file
                 in node._Node__expanded_parameter_arguments if is_file]
        name = node.node_name.rpartition("/")[2]
        nodes[name] = (package, executable, tuple(f for f in files if f))
    return nodes


def described(nodes):
    from exo_control.graph import share_file

    return {node.name: (node.package, node.executable, tuple(
        _share_relative(share_file(f)) for f in node.parameter_files)) for node in nodes}


@pytest.fixture
def installed_launch(launch_overlay):
    """Launch files resolve packages through the ament index: the overlay's install/ share."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return {package: Path(get_package_share_directory(package)) / "launch"
                for package in ("exo_control", "exo_bringup")}
    except PackageNotFoundError as error:
        pytest.skip(f"workspace not installed in the ament index ({error})")


def test_launch_files_start_the_described_graph_with_every_parameter_file(installed_launch):
    from exo_control.graph import HIP_ANGLES, LIVE, RECORDER, REPLAY, graph_nodes

    model = {"model_folder": "/tmp/model"}
    assist = installed_launch["exo_control"] / "assist.launch.py"
    replay = installed_launch["exo_control"] / "replay.launch.py"
    system = installed_launch["exo_bringup"] / "exo_system.launch.py"
    assert launched(assist, **model) == described(graph_nodes(LIVE))
    assert launched(assist, hip_angle_source="encoders", **model) == described(
        graph_nodes(LIVE, (HIP_ANGLES,)))
    replayed = {"trial_file": "/tmp/trial.h5", **model}
    assert launched(replay, **replayed) == described(graph_nodes(REPLAY))
    assert launched(system, mode="replay", record_output="/tmp/bag", **replayed) == described(
        graph_nodes(REPLAY, (RECORDER,)))
    assert launched(system, **model) == described(graph_nodes(LIVE))
    assert launched(WORKSPACE / "launch" / "exo_system.launch.py", mode="replay",
                    **replayed) == described(graph_nodes(REPLAY))


def test_demo_and_graph_test_start_the_described_replay_graph():
    """exo-demo, bench_end_to_end and test_graph start graph_parameters' nodes so."""
    from exo_control.graph import CHAIN, RECORDER, REPLAY, TRIAL_REPLAY, graph_nodes, share_file
    from exo_control.graph_processes import graph_parameters, node_arguments

    started = (*graph_parameters(Path("/m"), 70.0), RECORDER, TRIAL_REPLAY)
    assert set(started) == set(graph_nodes(REPLAY, (RECORDER,)))
    assert tuple(graph_parameters(Path("/m"), 70.0)) == CHAIN
    for node in started:
        args = node_arguments(node, {"x": 1})
        files = [args[i + 1] for i, a in enumerate(args) if a == "--params-file"]
        assert files == [str(share_file(f)) for f in node.parameter_files], node
        assert args[-2:] == ["-p", "x:=1"]  # per-run values win over the files
