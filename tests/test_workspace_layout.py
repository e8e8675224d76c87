"""The repository is a ROS 2 workspace colcon can build: well-formed packages and entry points."""

import importlib
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

SRC = Path(__file__).resolve().parents[1] / "src"
PYTHON_PACKAGES = ["exo_common", "k2muse_model", "k2muse_dataset", "k2muse_learning",
                   "k2muse_inference", "exo_control", "exo_hardware", "exo_bringup"]
# exo_common: the nodes' shared library; k2muse_model: the model contract; bringup: launch only
NODE_PACKAGES = [name for name in PYTHON_PACKAGES
                 if name not in ("exo_common", "k2muse_model", "exo_bringup")]


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_ament_python_package_is_complete(name):
    root = SRC / name
    package = parse_package(root / "package.xml")
    assert package.package_format == 3
    assert package.name == name
    assert package.get_build_type() == "ament_python"
    assert package.exec_depends, "runtime dependencies must be declared"
    assert (root / "resource" / name).is_file()
    assert (root / name / "__init__.py").is_file()
    setup_cfg = (root / "setup.cfg").read_text()
    assert f"script_dir=$base/lib/{name}" in setup_cfg
    assert f"install_scripts=$base/lib/{name}" in setup_cfg


@pytest.mark.parametrize("name", NODE_PACKAGES)
def test_every_console_entry_point_resolves(name):
    entry_points = importlib.metadata.distribution(name).entry_points
    scripts = [ep for ep in entry_points if ep.group == "console_scripts"]
    assert scripts, f"{name} declares no console entry point"
    for entry_point in scripts:
        assert callable(entry_point.load()), entry_point.name


def test_workspace_dependencies_between_packages_exist():
    names = {p.name for p in SRC.iterdir() if (p / "package.xml").exists()}
    for name in names:
        package = parse_package(SRC / name / "package.xml")
        for dependency in package.exec_depends + package.build_depends:
            if dependency.name.startswith(("k2muse_", "exo_")):
                assert dependency.name in names, f"{name} depends on missing {dependency.name}"


def test_exo_msgs_generates_every_message_file():
    root = SRC / "exo_msgs"
    package = parse_package(root / "package.xml")
    assert package.package_format == 3
    assert package.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [group.name for group in package.member_of_groups]
    listed = set(re.findall(r'"msg/(\w+\.msg)"', (root / "CMakeLists.txt").read_text()))
    on_disk = {p.name for p in (root / "msg").glob("*.msg")}
    assert listed == on_disk
    generated = importlib.import_module("exo_msgs.msg")
    for msg in on_disk:
        assert hasattr(generated, msg.removesuffix(".msg")), msg


def workspace_console_scripts():
    for name in PYTHON_PACKAGES:
        for entry_point in importlib.metadata.distribution(name).entry_points:
            if entry_point.group == "console_scripts":
                yield entry_point


def test_every_node_executable_starts_through_the_shared_node_entry():
    # A node is a module that runs itself with node_runner.run_node; its executable must be
    # made by exo_common.node_entry, which handles Ctrl-C before the node's heavy imports.
    node_modules = {
        f"{name}.{path.stem}"
        for name in PYTHON_PACKAGES for path in (SRC / name / name).glob("*.py")
        if "run_node(" in path.read_text() and path.name != "node_runner.py"}
    entered = {}
    for entry_point in workspace_console_scripts():
        target = entry_point.load()
        module = getattr(target, "node_module", None)
        if module is None:
            assert entry_point.module not in node_modules, (
                f"{entry_point.name} starts a node without exo_common.node_entry")
        else:
            entered[module] = entry_point
    assert set(entered) == node_modules
    assert len(node_modules) >= 7  # the five exo_control nodes, the estimator, the hip angles

    # The modules the executables import first must not pull in rclpy (or numpy, torch).
    entry_modules = sorted({ep.module for ep in entered.values()})
    probe = ("import importlib, sys\n"
             f"for name in {entry_modules!r}:\n    importlib.import_module(name)\n"
             "print(sorted(m for m in ('rclpy', 'numpy', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_every_installed_data_file_pattern_matches_a_file(name):
    # A pattern over a missing folder installs nothing and hides a typo or a moved folder.
    root = SRC / name
    patterns = re.findall(r'glob\("([^"]+)"\)', (root / "setup.py").read_text())
    for pattern in patterns:
        assert list(root.glob(pattern)), f"{name}/setup.py installs {pattern!r}: no such file"
