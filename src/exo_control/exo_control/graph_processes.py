"""The assistance graph run as node processes over DDS, as exo_control.graph describes them.

Each node is its own executable with its parameter files and remappings; a private DDS domain
on localhost keeps concurrent runs apart. ``run_graph`` replays a trial through the whole
chain while the recorder writes it to a bag: exo-demo (exo_bringup.demo), the benchmarks and
the launch tests use it.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .graph import (
    ASSISTANCE,
    CHAIN,
    ESTIMATOR,
    RECORDER,
    REPLAY,
    TRIAL_REPLAY,
    GraphNode,
    graph_nodes,
    parameter_files,
)


class GraphError(RuntimeError):
    """A node that failed or did not come up; the message names its log."""


def executable(name: str) -> str:
    """Console entry point installed beside this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise GraphError(f"console entry point {name!r} is not installed; run tools/setup_env.sh")
    return found


def ros_arguments(parameters: Mapping[str, object], params_files: Sequence[Path] = (),
                  remappings: Sequence[tuple[str, str]] = ()) -> list[str]:
    """``--ros-args`` command-line arguments setting each parameter (YAML syntax values)."""
    args = ["--ros-args"]
    for source, target in remappings:
        args += ["-r", f"{source}:={target}"]
    for params_file in params_files:
        args += ["--params-file", str(params_file)]
    for name, value in parameters.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | tuple):
            text = "[" + ", ".join(str(v) for v in value) + "]"
        else:
            text = str(value)
        args += ["-p", f"{name}:={text}"]
    return args


def isolated_ros_environment() -> dict[str, str]:
    """The current environment plus a private DDS domain on localhost unless one is set."""
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class ProcessGroup:
    """Node executables started as processes, each logging to ``log_dir/<name>.log``."""

    log_dir: Path
    env: dict[str, str] = field(default_factory=isolated_ros_environment)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: Sequence[str]) -> subprocess.Popen:
        """Start one executable; its own process group, so a SIGINT reaches only it."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "w") as log:
            process = subprocess.Popen([executable(name), *args], stdout=log,
                                       stderr=subprocess.STDOUT, env=self.env,
                                       start_new_session=True)
        self.processes[name] = process
        return process

    def check_alive(self, names: Sequence[str] | None = None) -> None:
        """Raise :class:`GraphError` naming the log of any process that has exited."""
        for name in names or list(self.processes):
            code = self.processes[name].poll()
            if code is not None:
                raise GraphError(f"{name} exited with status {code}; see "
                                f"{self.log_dir / (name + '.log')}")

    def stop(self, name: str, timeout_s: float = 10.0) -> int:
        """SIGINT (clean shutdown), then SIGKILL if it does not exit in time."""
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stop_all(self) -> None:
        """Stop every process, newest first."""
        for name in reversed(list(self.processes)):
            self.stop(name)


def config_files() -> list[Path]:
    """Parameter files of the replay graph and its recorder (exo_control.graph)."""
    return parameter_files(graph_nodes(REPLAY, (RECORDER,)))


def node_arguments(node: GraphNode, parameters: Mapping[str, object] | None = None) -> list[str]:
    """``--ros-args`` for ``node``: its remappings, its parameter files, then ``parameters``."""
    return ros_arguments(parameters or {}, parameter_files((node,)), node.remappings)


def graph_parameters(model_folder: Path, body_mass_kg: float) -> dict[GraphNode, dict]:
    """Per-run parameters of the chain's nodes (over their parameter files), in start order."""
    runs = {node: {} for node in CHAIN}
    runs[ESTIMATOR] = {"model_folder": str(model_folder), "backend": "onnxruntime"}
    runs[ASSISTANCE] = {"enabled_on_start": True, "body_mass_kg": body_mass_kg}
    return runs


def wait_for_controller(env: Mapping[str, str], timeout_s: float,
                        check: Callable[[], None] = lambda: None) -> None:
    """Block until the controller reports watchdog OK.

    Then actuator feedback and assistance commands are flowing, so the replay's first samples
    meet a running loop instead of a braked motor.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from exo_msgs.msg import ControllerState

    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("exo_demo_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    ready: list[bool] = []
    node.create_subscription(
        ControllerState, "/controller/state",
        lambda msg: ready.append(msg.watchdog == ControllerState.WATCHDOG_OK),
        QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    try:
        deadline = time.monotonic() + timeout_s
        while not any(ready):
            check()
            if time.monotonic() > deadline:
                raise GraphError(f"the controller did not report watchdog OK within {timeout_s} s")
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def run_graph(trial_file: Path, model_folder: Path, bag: Path, log_dir: Path,
              body_mass_kg: float, rate_scale: float = 1.0, settle_s: float = 1.5,
              timeout_s: float = 600.0) -> Path:
    """Replay ``trial_file`` through the whole graph while recording it to ``bag``."""
    from .trial_source import load_trial

    duration_s = load_trial(trial_file).duration_s / rate_scale
    group = ProcessGroup(log_dir)
    try:
        group.start(RECORDER.executable, node_arguments(RECORDER, {"output": str(bag)}))
        for node, params in graph_parameters(model_folder, body_mass_kg).items():
            group.start(node.executable, node_arguments(node, params))
        graph = [RECORDER.executable, *(node.executable for node in CHAIN)]
        wait_for_controller(group.env, 90.0, lambda: group.check_alive(graph))
        # Hold the replay until all three listeners of /joint_states (estimator, simulated
        # actuator, recorder) are matched, so the recording starts with the first sample.
        replay = group.start(TRIAL_REPLAY.executable, node_arguments(TRIAL_REPLAY, {
            "trial_file": str(trial_file), "rate_scale": rate_scale,
            "wait_for_subscribers": 3, "subscriber_wait_s": 60.0}))
        deadline = time.monotonic() + min(timeout_s, duration_s + 90.0)
        started = time.monotonic()
        with tqdm(total=round(duration_s), desc="replay", unit="s") as bar:
            while replay.poll() is None:
                group.check_alive(graph)
                if time.monotonic() > deadline:
                    raise GraphError(f"replay did not finish in time; see {log_dir}")
                elapsed = min(int(time.monotonic() - started), bar.total)
                if elapsed > bar.n:
                    bar.update(elapsed - bar.n)
                time.sleep(0.2)
        if replay.returncode != 0:
            raise GraphError(f"trial_replay exited with status {replay.returncode}; see "
                            f"{log_dir / 'trial_replay.log'}")
        time.sleep(settle_s)  # let the assistance fade out after the input stops
        group.check_alive(graph)
        if group.stop(RECORDER.executable) != 0 or not bag.is_dir():
            raise GraphError(f"topic_recorder did not close {bag}; see "
                            f"{log_dir / 'topic_recorder.log'}")
    finally:
        group.stop_all()
    return bag
