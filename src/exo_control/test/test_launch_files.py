"""Launch files and parameter YAMLs, checked without a ROS install.

`launch`/`launch_ros` are missing here, so the launch files are compiled and inspected (every
executable exists, every LaunchConfiguration is declared, every config file is shipped), and the
YAMLs are validated against the nodes' own configuration classes.
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
from exo_control.actuator import ActuatorNodeConfig, SimulatedActuatorConfig
from exo_control.assistance import AssistanceConfig
from exo_control.controller import ControllerConfig
from exo_control.force_loop import ForceLoopConfig
from exo_control.params import config_from_mapping, field_specs
from sensor_msgs.msg import JointState

from exo_msgs.msg import ActuatorState, AssistanceCommand, ControllerState, HipMomentEstimate

PACKAGE = Path(__file__).resolve().parents[1]
WORKSPACE = PACKAGE.parents[1]
LAUNCH_FILES = sorted(PACKAGE.glob("launch/*.launch.py")) + sorted(
    (WORKSPACE / "launch").glob("*.launch.py"))
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
        assert (PACKAGE / folder / name).is_file(), f"{path.name} refers to missing {name}"


def test_replay_launch_forwards_every_graph_argument_to_assist_launch():
    assist = declared_arguments(ast.parse((PACKAGE / "launch/assist.launch.py").read_text()))
    replay = declared_arguments(ast.parse((PACKAGE / "launch/replay.launch.py").read_text()))
    for name in ("trial_file", "rate_scale", "loop", "start_offset_s", "model_dir", "backend",
                 "side", "gain"):
        assert name in replay
    assert {"model_dir", "backend", "side", "gain", "actuator_executable"} <= assist


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
