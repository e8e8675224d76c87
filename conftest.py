"""Workspace-wide pytest fixtures: an isolated DDS domain and helpers to run ROS 2 nodes.

Every test session picks its own ROS_DOMAIN_ID and keeps discovery on localhost, so test runs
that overlap on one machine never see each other's topics and no traffic leaves the host.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("PYTHONUNBUFFERED", "1")

WORKSPACE = Path(__file__).resolve().parent

# A test run started as a background job of a non-interactive shell inherits SIGINT ignored,
# and so would every ``ros2 launch`` it starts, which then never sees the SIGINT that the tests
# (or STOP_WITH_PARENT) send it. Catching SIGINT here gives the children the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _stop_with_parent() -> list[str]:
    """Command prefix that sends a child SIGINT when the test process dies.

    A test process killed (by a CI timeout's SIGTERM, say) runs no fixture teardown; this way
    no node outlives it. The child must be started from the test's own thread (the kernel
    watches the thread that forked). util-linux ``setpriv --pdeathsig`` (Linux); where it is
    missing, nothing is added.
    """
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--pdeathsig", "INT"] if setpriv else []
    if prefix and subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        return []  # a setpriv without --pdeathsig (util-linux < 2.33)
    return prefix


STOP_WITH_PARENT = _stop_with_parent()


def _executable(name: str) -> str:
    """Path of a console entry point: beside this interpreter, on PATH or in lib/<package>.

    The last is where colcon installs node executables (``colcon test``, the overlay).
    """
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    installed = [str(p) for prefix in prefixes for p in Path(prefix).glob(f"lib/*/{name}")]
    found = shutil.which(name) or next(iter(installed), None)
    if found is None:
        raise FileNotFoundError(
            f"console entry point {name!r} is not installed; run tools/setup_env.sh"
        )
    return found


@pytest.fixture
def ros_node():
    """An rclpy node in a context of its own, shut down after the test."""
    rclpy = pytest.importorskip("rclpy")
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"pytest_{os.getpid()}_{random.randint(0, 1 << 30)}", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.test_executor = executor
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)


@pytest.fixture
def spin_until():
    """Spin a node's executor until ``predicate()`` is true or ``timeout_s`` passes; return it."""

    def _spin(node, predicate, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            node.test_executor.spin_once(timeout_sec=0.02)
        return bool(predicate())

    return _spin


class NodeProcess:
    """A node executable started as its own process, with its output kept for failure reports."""

    def __init__(self, name: str, args: list[str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [*STOP_WITH_PARENT, _executable(name), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 10.0) -> int:
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def start_node(tmp_path):
    """Start node executables (console entry points); all are stopped after the test.

    ``start_node("trial_replay", "--ros-args", "-p", "file:=...")`` returns a NodeProcess.
    """
    started: list[NodeProcess] = []

    def _start(name: str, *args: str) -> NodeProcess:
        proc = NodeProcess(name, list(args), tmp_path)
        started.append(proc)
        return proc

    yield _start
    for proc in reversed(started):
        proc.stop()


@pytest.fixture(scope="session")
def stop_with_parent() -> list[str]:
    """Prefix for a test's own child commands: they get SIGINT if the test process dies."""
    return list(STOP_WITH_PARENT)


@pytest.fixture(scope="session")
def launch_overlay() -> str:
    """The ``ros2`` command, where ``ros2 launch`` can start this workspace; skip elsewhere.

    ``ros2 launch`` finds packages through the ament index and their share folders, which the
    colcon overlay has (``make test`` builds and sources it, as ``colcon test`` does) and an
    editable install has not.
    """
    pytest.importorskip("launch_ros", reason="no ROS 2 launch stack: neither ../shared/ros2-launch"
                        " nor a ROS 2 install is available")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("exo_control")
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH is not set at all
        pytest.skip("exo_control is not in the ament index: run the tests in the colcon overlay"
                    " (make test) or with colcon test")
    ros2 = shutil.which("ros2")
    if ros2 is None:
        pytest.skip("the ros2 command is not on PATH")
    return ros2


@dataclass(frozen=True)
class Assets:
    """What a graph test replays: a trained model folder and held-out trials."""

    model: Path
    trial: Path
    nan_trial: Path  # the same trial with hip angles NaN from NAN_FROM_S on
    body_mass_kg: float


NAN_FROM_S = 6.0


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Assets:
    """Generated dataset, processed; a TCN trained on P01 and exported; P02's trial to replay.

    Made once per session for every test that runs the whole graph (test_graph, the launch
    tests).
    """
    import numpy as np
    from k2muse_dataset.process import process_release
    from k2muse_dataset.synth import generate_release
    from k2muse_dataset.trial_h5 import iter_trial_files, read_trial_h5, write_trial_h5
    from k2muse_learning.artifacts import TrainedModel, write_model_folder
    from k2muse_learning.training import TrainingConfig, fit_tcn
    from k2muse_learning.windows import load_legs

    root = tmp_path_factory.mktemp("graph_assets")
    release = generate_release(root / "release", participants=("P01", "P02"),
                               mode_keys=("LG_0",), trials=2, duration_s=20.0, seed=7)
    process_release(release, root / "processed", jobs=2)
    config = TrainingConfig(epochs=6, patience=3, windows_per_epoch=400, threads=2,
                            architecture={"channels": 16, "levels": 4, "kernel_size": 4,
                                          "dropout": 0.0, "weight_norm": True})
    legs = load_legs(root / "processed", config.input_names, participants=["P01"])
    model, _ = fit_tcn(legs, config, seed=0)
    folder = write_model_folder(root / "model", [TrainedModel("LG_0", model)],
                                window_length=config.window_length, sample_rate_hz=100.0,
                                input_names=config.input_names, synthetic_training_data=True,
                                model_id="graph-test-P01")
    trial_path = next(iter(iter_trial_files(root / "processed" / "trials" / "P02")))
    trial = read_trial_h5(trial_path, load_emg=False, load_aus=False)
    trial.angles_rad["hip"][trial.time_s >= NAN_FROM_S] = np.nan
    nan_trial = write_trial_h5(root / "nan_trial.h5", trial)
    return Assets(folder, trial_path, nan_trial, trial.body_mass_kg)
