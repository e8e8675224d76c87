"""package.xml against the code: each package declares what it imports and nothing else, with
real rosdep keys, and the packages import each other only in the documented direction
(docs/architecture.md, "Package dependencies").

The imports are read with ``ast`` from every Python file of a package (module level and inside
functions; ``pytest.importorskip("x")`` and ``importlib.import_module("x")`` count as
importing ``x``). Runtime files must match the
``exec_depend`` keys; test files (``test/``) must match the ``test_depend`` keys, less what is
already an ``exec_depend``. Optional libraries and dependencies that are not imports are
listed below, each with its reason.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
LOCAL_ROSDEP = ROOT / "tools" / "rosdep.yaml"
CONSTRAINTS = ROOT / "tools" / "constraints.txt"
RUNTIME, TEST = "exec", "test"

# Top-level module -> rosdep key. ROS packages and the workspace's own packages are keyed by
# their package name. Every key exists in ros/rosdistro (rosdep/python.yaml, checked
# 2026-11-25) except the four `*-pip` keys defined in tools/rosdep.yaml.
MODULE_KEYS = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "h5py": "python3-h5py",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "openpyxl": "python3-openpyxl",
    "yaml": "python3-yaml",
    "joblib": "python3-joblib",
    "sklearn": "python3-sklearn",
    "torch": "python3-torch",
    "onnxruntime": "python3-onnxruntime-pip",
    "rosbags": "python3-rosbags-pip",
    "can": "python3-can",
    "pytest": "python3-pytest",
    "ezc3d": "python3-ezc3d-pip",
    "onnx": "python3-onnx-pip",
    "onnxslim": "python3-onnxslim-pip",
    "safetensors": "python3-safetensors-pip",
    # No rosdep key anywhere; only ever optional (see OPTIONAL).
    "opensourceleg": None,
    "tensorrt": None,
    "distributed": None,
    "ray": None,
    "flexsea": None,
    "cuda": None,  # cuda-python
}
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "sensor_msgs", "diagnostic_msgs", "std_msgs",
                "lifecycle_msgs", "launch", "launch_ros", "launch_pytest", "ament_index_python"}
# Build-time only: setup.py of every ament_python package.
IGNORED_MODULES = {"setuptools"}

# Imported but deliberately not declared: (package, scope) -> {module: why}.
OPTIONAL = {
    ("k2muse_learning", RUNTIME): {
        "distributed": "--backend dask of the training and baseline sweeps (parallel.py)",
        "ray": "--backend ray of the training and baseline sweeps (parallel.py)",
    },
    ("k2muse_learning", TEST): {"distributed": "the dask backend test skips without it",
                                "ray": "the ray backend test skips without it"},
    ("k2muse_inference", RUNTIME): {
        "torch": "pytorch backend only",
        "safetensors": "pytorch backend only (weights); onnxruntime and tensorrt need neither",
    },
    ("k2muse_model", RUNTIME): {
        "torch": "the TCN module and its weights (tcn.py, weights.py), imported on demand",
        "safetensors": "the weights file format (weights.py, imported when weights are read)",
        "tensorrt": "TensorRT engines, GPU machines only (tensorrt_runner.py, imported on demand)",
        "cuda": "cuda-python device buffers of the TensorRT runner (tensorrt_runner.py)",
    },
    ("exo_hardware", RUNTIME): {
        "can": "real hardware only (osl_ports.py, imported on demand)",
        "opensourceleg": "real hardware only (osl_ports.py, imported on demand)",
    },
    ("exo_hardware", TEST): {
        "can": "hardware driver tests skip without it",
        "opensourceleg": "hardware driver tests skip without it",
        "flexsea": "Dephy tests skip without it",
    },
}

# Declared though no Python file imports them: (package, scope) -> {key: why}.
NOT_IMPORTED = {
    ("exo_control", RUNTIME): {
        "k2muse_inference": "its graph starts the estimator node (an executable)",
    },
    ("exo_control", TEST): {
        "ros2launch": "test_launch_cli runs `ros2 launch`",
        "ros2run": "test_launch_cli runs `ros2 run`",
    },
    ("exo_bringup", RUNTIME): {
        "k2muse_inference": "its launch file starts the estimator node (an executable)",
    },
}

# Import direction: package -> workspace modules its runtime code may import (a module allows
# its submodules). exo_msgs (interfaces) may be imported by any package.
ALLOWED_IMPORTS = {
    "exo_common": set(),  # the ROS layer every node shares
    # The model contract: folder format, input features (training windows = live windows) and
    # the TensorRT runner (the engine builder's parity check, the tensorrt backend).
    "k2muse_model": set(),
    # The bag export writes the contract's hip velocity.
    "k2muse_dataset": {"k2muse_model"},
    "k2muse_learning": {"k2muse_dataset", "k2muse_model"},
    "k2muse_inference": {"exo_common", "k2muse_model"},
    "exo_control": {"exo_common", "k2muse_dataset", "k2muse_model"},
    "exo_hardware": {"exo_common", "exo_control"},
    # The system package; exo-demo generates a dataset and trains its model (demo.py).
    "exo_bringup": {"exo_common", "exo_control", "k2muse_inference", "exo_hardware",
                    "k2muse_dataset", "k2muse_learning"},
}
INTERFACE_PACKAGES = {"exo_msgs"}
# Imports against that direction today: (package, file, imported workspace module). The test
# fails when one disappears too, so that its entry is removed here.
KNOWN_DIRECTION_VIOLATIONS: set[tuple[str, str, str]] = set()


@dataclass(frozen=True)
class Import:
    """One imported module (absolute dotted name) and where."""

    module: str
    file: str
    line: int


def _call_import_target(node: ast.Call) -> str | None:
    """``x`` of ``pytest.importorskip("x")`` and ``importlib.import_module("x")``."""
    function = node.func
    called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    if (called in {"importorskip", "import_module"} and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return node.args[0].value
    return None


def imports_of(path: Path, relative_to: Path) -> list[Import]:
    """Every absolute import in one file, at any depth (relative imports stay in the package)."""
    name = path.relative_to(relative_to).as_posix()
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            found.append(Import(node.module, name, node.lineno))
        elif isinstance(node, ast.Call) and (target := _call_import_target(node)):
            found.append(Import(target, name, node.lineno))
    return found


def package_imports(package_dir: Path) -> dict[str, list[Import]]:
    """Non-standard-library imports of a package's runtime files and of its test files."""
    scopes: dict[str, list[Import]] = {RUNTIME: [], TEST: []}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).parts
        if parts[0] in {"build", "install"} or parts == ("setup.py",):
            continue
        scope = TEST if parts[0] == "test" else RUNTIME
        scopes[scope] += [i for i in imports_of(path, package_dir)
                          if i.module.split(".")[0] not in sys.stdlib_module_names]
    return scopes


def rosdep_key(module: str, workspace: set[str]) -> str | None:
    """The rosdep key of a top-level module; KeyError where the mapping does not know it."""
    if module in workspace or module in ROS_PACKAGES:
        return module
    return MODULE_KEYS[module]


def dependency_problems(package_dir: Path, workspace: set[str], optional=OPTIONAL,
                        not_imported=NOT_IMPORTED) -> list[str]:
    """Differences between a package's package.xml and its imports, one line each."""
    package = parse_package(package_dir / "package.xml")
    name = package.name
    declared = {RUNTIME: {d.name for d in package.exec_depends},
                TEST: {d.name for d in package.test_depends}}
    problems = []
    needed: dict[str, set[str]] = {}
    for scope, imports in package_imports(package_dir).items():
        skipped = optional.get((name, scope), {})
        tops = {i.module.split(".")[0] for i in imports} - {name} - IGNORED_MODULES
        for module in sorted(set(skipped) - tops):
            problems.append(f"{name} {scope}: optional {module!r} is no longer imported")
        keys = set()
        for module in sorted(tops - set(skipped)):
            try:
                key = rosdep_key(module, workspace)
            except KeyError:
                problems.append(f"{name} {scope}: no rosdep key known for module {module!r}"
                                " (add it to MODULE_KEYS)")
                continue
            if key is None:
                problems.append(f"{name} {scope}: {module!r} has no rosdep key; it can only be"
                                " an optional import")
            else:
                keys.add(key)
        for module in skipped:
            if rosdep_key(module, workspace) in declared[scope]:
                problems.append(f"{name} {scope}: {module!r} is listed as optional but declared")
        needed[scope] = keys | set(not_imported.get((name, scope), {}))
    needed[TEST] -= needed[RUNTIME]
    for scope in (RUNTIME, TEST):
        tag = f"{scope}_depend"
        for key in sorted(needed[scope] - declared[scope]):
            problems.append(f"{name}: imports need <{tag}>{key}</{tag}>")
        for key in sorted(declared[scope] - needed[scope]):
            problems.append(f"{name}: <{tag}>{key}</{tag}> is declared but not used")
    return problems


def direction_violations(package_dir: Path, name: str, workspace: set[str]) -> set[tuple]:
    """Runtime imports of another workspace package that ALLOWED_IMPORTS does not permit."""
    allowed = ALLOWED_IMPORTS[name] | INTERFACE_PACKAGES | {name}
    found = set()
    for item in package_imports(package_dir)[RUNTIME]:
        if item.module.split(".")[0] not in workspace:
            continue
        if not any(item.module == a or item.module.startswith(a + ".") for a in allowed):
            found.add((name, item.file, item.module))
    return found


def _python_packages() -> list[Path]:
    return sorted(p.parent for p in SRC.glob("*/package.xml")
                  if parse_package(p).get_build_type() == "ament_python")


def _workspace() -> set[str]:
    return {p.parent.name for p in SRC.glob("*/package.xml")}


@pytest.mark.parametrize("package_dir", _python_packages(), ids=lambda p: p.name)
def test_package_xml_declares_exactly_what_the_package_imports(package_dir):
    assert dependency_problems(package_dir, _workspace()) == []


def test_local_rosdep_keys_are_the_ones_in_use_and_name_their_pypi_package():
    local = yaml.safe_load(LOCAL_ROSDEP.read_text())
    declared = set()
    for package_dir in _python_packages():
        package = parse_package(package_dir / "package.xml")
        declared |= {d.name for d in package.exec_depends + package.test_depends}
    assert set(local) == {key for key in MODULE_KEYS.values() if key in declared
                          and key not in _UPSTREAM_KEYS}
    for key, rules in local.items():
        pypi = key.removeprefix("python3-").removesuffix("-pip")
        assert all(rule["pip"]["packages"] == [pypi] for rule in rules.values()), key


# Keys confirmed in ros/rosdistro rosdep/python.yaml (2026-11-25).
_UPSTREAM_KEYS = {"python3-numpy", "python3-scipy", "python3-h5py", "python3-matplotlib",
                  "python3-tqdm", "python3-openpyxl", "python3-yaml", "python3-joblib",
                  "python3-sklearn", "python3-torch", "python3-onnxruntime-pip",
                  "python3-rosbags-pip", "python3-can", "python3-pytest"}


def test_every_declared_key_is_known():
    known = _UPSTREAM_KEYS | set(yaml.safe_load(LOCAL_ROSDEP.read_text())) | ROS_PACKAGES | {
        key for keys in NOT_IMPORTED.values() for key in keys} | _workspace()
    for package_dir in _python_packages():
        package = parse_package(package_dir / "package.xml")
        unknown = {d.name for d in package.exec_depends + package.test_depends} - known
        assert not unknown, f"{package.name}: keys not in rosdep: {sorted(unknown)}"


def test_imports_follow_the_package_direction():
    workspace = _workspace()
    found = set()
    for package_dir in _python_packages():
        assert package_dir.name in ALLOWED_IMPORTS, f"add {package_dir.name} to ALLOWED_IMPORTS"
        found |= direction_violations(package_dir, package_dir.name, workspace)
    assert found - KNOWN_DIRECTION_VIOLATIONS == set(), "imports against the package direction"
    assert KNOWN_DIRECTION_VIOLATIONS - found == set(), "fixed: remove from the known list"


def _write_package(root: Path, name: str, exec_keys: list[str], sources: dict[str, str]) -> Path:
    package_dir = root / name
    (package_dir / name).mkdir(parents=True)
    depends = "\n".join(f"  <exec_depend>{key}</exec_depend>" for key in exec_keys)
    (package_dir / "package.xml").write_text(
        f'<?xml version="1.0"?>\n<package format="3">\n  <name>{name}</name>\n'
        "  <version>0.1.0</version>\n  <description>fake</description>\n"
        '  <maintainer email="a@example.com">a</maintainer>\n  <license>Apache-2.0</license>\n'
        f"{depends}\n  <export><build_type>ament_python</build_type></export>\n</package>\n")
    for relative, text in sources.items():
        (package_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (package_dir / relative).write_text(text)
    return package_dir


def test_a_package_missing_a_dependency_or_declaring_an_unused_one_is_reported(tmp_path):
    package_dir = _write_package(tmp_path, "fake_pkg", ["python3-numpy", "python3-h5py"], {
        "fake_pkg/__init__.py": "import numpy\n",
        "fake_pkg/late.py": "def load():\n    from scipy import io\n    return io\n",
        "test/test_x.py": "import pytest\nyaml = pytest.importorskip('yaml')\n",
    })
    problems = dependency_problems(package_dir, {"fake_pkg"})
    assert problems == [
        "fake_pkg: imports need <exec_depend>python3-scipy</exec_depend>",
        "fake_pkg: <exec_depend>python3-h5py</exec_depend> is declared but not used",
        "fake_pkg: imports need <test_depend>python3-pytest</test_depend>",
        "fake_pkg: imports need <test_depend>python3-yaml</test_depend>",
    ]


def test_unknown_modules_and_stale_or_declared_optional_entries_are_reported(tmp_path):
    package_dir = _write_package(tmp_path, "fake_pkg", ["python3-torch"], {
        "fake_pkg/a.py": "try:\n    import torch\nexcept ImportError:\n    torch = None\n"
                         "import not_a_known_library\n",
    })
    optional = {("fake_pkg", RUNTIME): {"torch": "optional", "ray": "optional"}}
    problems = dependency_problems(package_dir, {"fake_pkg"}, optional=optional)
    assert "fake_pkg exec: optional 'ray' is no longer imported" in problems
    assert "fake_pkg exec: 'torch' is listed as optional but declared" in problems
    assert any("'not_a_known_library'" in p for p in problems)


def test_an_import_against_the_direction_is_reported(tmp_path):
    package_dir = _write_package(tmp_path, "k2muse_learning", ["k2muse_model"], {
        "k2muse_learning/ok.py": "from k2muse_model.model_folder import verify_folder\n",
        "k2muse_learning/bad.py": "def f():\n    from k2muse_inference.estimator import x\n",
    })
    found = direction_violations(package_dir, "k2muse_learning",
                                 {"k2muse_learning", "k2muse_model", "k2muse_inference"})
    assert found == {("k2muse_learning", "k2muse_learning/bad.py", "k2muse_inference.estimator")}


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line)[0].lower().replace("_", "-"))
    return names


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_requirement_is_pinned_and_torch_stays_the_cpu_release():
    required = set().union(*(_requirement_names(p) for p in (ROOT / "tools").glob(
        "requirements*.txt")))
    pins = _pins()
    assert required - set(pins) == set(), "pin these in tools/constraints.txt"
    assert pins["torch"] == "2.13.0"


def test_the_environment_has_the_pinned_versions():
    mismatched = {}
    for name, version in _pins().items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # optional hardware libraries, launch stack on a ROS install
        if installed.split("+")[0] != version:
            mismatched[name] = (installed, version)
    assert mismatched == {}
