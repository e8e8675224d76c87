"""Every command-line tool ends a Ctrl-C with one line and status 130, from its first moment.

The console scripts are started as installed; a real SIGINT is sent to the tool's whole
process group (as a terminal does) at a chosen moment by a ``sitecustomize`` module put on the
tool's PYTHONPATH: while the tool's own module imports, or when the tool opens a given file.
"""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PACKAGES = ["k2muse_dataset", "k2muse_learning", "exo_control", "exo_bringup", "exo_common",
            "k2muse_model", "k2muse_inference", "exo_hardware"]
TOOLS = {"k2muse": ["info", "nothing.h5"], "k2muse-tcn": ["report", "--model", "m", "--trial", "t"],
         "k2muse-baselines": ["run", "--data", "d", "--out", "o"], "exo-analyze": ["nothing"],
         "exo-demo": ["--output", "o"]}

# SIGINT to the process group once: at the first import inside module $SIGINT_IN_MODULE, or
# when a file whose path contains $SIGINT_ON_OPEN is opened.
SITECUSTOMIZE = '''
import os, signal, sys

_module, _opened = os.environ.get("SIGINT_IN_MODULE"), os.environ.get("SIGINT_ON_OPEN")
_state = {"inside": False, "sent": False}


def _interrupt():
    if not _state["sent"]:
        _state["sent"] = True
        os.killpg(os.getpgid(0), signal.SIGINT)


class _InterruptInsideModule:
    def find_spec(self, name, path=None, target=None):
        if _state["inside"]:
            _interrupt()
        elif name == _module:
            _state["inside"] = True
        return None


def _on_open(event, args):
    if event == "open" and isinstance(args[0], str) and _opened in args[0]:
        _interrupt()


if _module:
    sys.meta_path.insert(0, _InterruptInsideModule())
if _opened:
    sys.addaudithook(_on_open)
'''


def cli_scripts():
    for name in PACKAGES:
        for entry_point in importlib.metadata.distribution(name).entry_points:
            if entry_point.group == "console_scripts" and \
                    not hasattr(entry_point.load(), "node_module"):
                yield entry_point


def run_interrupted(tmp_path, argv, **trigger):
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, **trigger,
           "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    script = str(Path(sys.executable).parent / argv[0])
    return subprocess.run([script, *argv[1:]], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600, start_new_session=True)


def test_every_cli_starts_through_cli_entry_from_a_light_module():
    scripts = {ep.name: ep for ep in cli_scripts()}
    assert set(scripts) == set(TOOLS)
    for name, entry_point in scripts.items():
        assert getattr(entry_point.load(), "cli_module", None), f"{name}: not made by cli_entry"
    probe = ("import importlib, sys\n"
             f"for name in {sorted({ep.module for ep in scripts.values()})!r}:\n"
             "    importlib.import_module(name)\n"
             "print(sorted(m for m in ('numpy', 'torch', 'h5py', 'tqdm') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_ctrl_c_while_a_cli_imports_is_one_line(tool, tmp_path):
    entry_point = next(ep for ep in cli_scripts() if ep.name == tool)
    module = entry_point.load().cli_module
    result = run_interrupted(tmp_path, [tool, *TOOLS[tool]], SIGINT_IN_MODULE=module)
    assert result.returncode == 130, result.stderr
    assert result.stderr == f"{tool}: interrupted\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hook"]


def test_ctrl_c_while_exo_analyze_reads_a_bag_is_one_line(tmp_path):
    from exo_control.recorder import GRAPH_TOPICS, BagRecording, exo_typestore

    store = exo_typestore()
    bag = BagRecording(tmp_path / "run", {"/joint_states": GRAPH_TOPICS["/joint_states"]})
    for i in range(10):
        stamp = store.types["builtin_interfaces/msg/Time"](sec=1_700_000_000, nanosec=i * 10**7)
        msg = store.types["sensor_msgs/msg/JointState"](
            header=store.types["std_msgs/msg/Header"](stamp=stamp, frame_id=""),
            name=["left_hip_joint", "right_hip_joint"], position=np.array([0.1, 0.2]),
            velocity=np.zeros(2), effort=np.zeros(2))
        bag.write("/joint_states", 1_700_000_000 * 10**9 + i * 10**7,
                  store.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
    bag_dir = bag.close()
    result = run_interrupted(tmp_path, ["exo-analyze", str(bag_dir), "--output",
                                        str(tmp_path / "analysis")], SIGINT_ON_OPEN=".mcap")
    assert result.returncode == 130, result.stderr
    assert result.stderr == "exo-analyze: interrupted (finished outputs are kept)\n"
    assert not (tmp_path / "analysis").exists()


def test_ctrl_c_while_exo_demo_processes_its_dataset_is_one_line(tmp_path):
    """Ctrl-C when the first processed trial is written (by a pool worker): the batch stops."""
    result = run_interrupted(tmp_path, ["exo-demo", "--output", str(tmp_path / "demo"),
                                        "--epochs", "1"], SIGINT_ON_OPEN="/processed/trials/")
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines()
             if line.strip() and "%|" not in line]
    assert result.returncode == 130, result.stderr
    assert lines == ["exo-demo: interrupted (finished outputs are kept)"], result.stderr
    demo = tmp_path / "demo"
    assert not (demo / "logs").exists() and not (demo / "model").exists()  # stopped there
    assert not [p for p in demo.rglob("*") if p.name.endswith(".part")]
