"""The launch files through the ``ros2`` command line, as the README writes them.

``ros2 launch exo_control assist.launch.py ...`` idle and with a fake encoder publishing
/joint_states (trial_replay looping a generated trial: a steady 100 Hz stream from a process of
its own, which a test process busy with four subscriptions cannot promise under load), and
``ros2 launch launch/exo_system.launch.py mode:=replay ... record_output:=`` on a generated
trial and a trained model (the session's ``assets``). Every launch is ended with
SIGINT, the way Ctrl-C ends it, and must end every process it started cleanly (exit 0, no
traceback) before launch would escalate to SIGTERM; the assist graph is started and interrupted
SIGINT_REPEATS times with messages flowing, where a shutdown race would show.

They need the colcon overlay (``make test`` builds and sources it, ``colcon test`` has it);
elsewhere the ``launch_overlay`` fixture skips them with the reason.
"""

import json
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
from exo_control.analyze import limit_violations, limits_from_params_files, load_recording  # noqa: E402
from exo_control.graph_processes import config_files, ros_arguments  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from exo_msgs.msg import (  # noqa: E402
    ActuatorState,
    AssistanceCommand,
    HipMomentEstimate,
    MotorCommand,
)

WORKSPACE = Path(__file__).resolve().parents[3]
STARTUP_BOUND_S = 90.0  # four Python nodes importing rclpy and torch on a busy 2-core machine
STOP_BOUND_S = 5.0  # launch sends SIGTERM 5 s after SIGINT; a clean stop never needs it
SIGINT_REPEATS = 8
# A node in the ROS graph is past its imports and handles SIGINT: only then is a stop "clean".
ASSIST_NODES = {"hip_moment_estimator", "assistance_profile", "admittance_controller",
                "simulated_actuator"}
ASSISTING_FORCE_N = 20.0
# Subscriptions that match reliable and best-effort publishers alike.
LISTEN = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT)


class Launch:
    """``ros2 launch ARGS`` in a process group of its own, output kept in a log file.

    ``prefix`` (the ``stop_with_parent`` fixture) makes launch shut its nodes down if the test
    process is killed; a failed test's teardown kills the whole group (``close``).
    """

    def __init__(self, args: list[str], log_path: Path, prefix: list[str]):
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen([*prefix, "ros2", "launch", *args], stdout=self._log,
                                        stderr=subprocess.STDOUT, cwd=WORKSPACE,
                                        start_new_session=True)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def interrupt(self, whole_group: bool = True) -> float:
        """SIGINT as Ctrl-C sends it (whole group) or to launch alone; seconds until it ended."""
        start = time.monotonic()
        if whole_group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30.0)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        return time.monotonic() - start

    def assert_stopped_cleanly(self, seconds: float) -> None:
        out = self.output()
        started = re.findall(r"\[INFO\] \[([\w-]+)\]: process started with pid", out)
        finished = re.findall(r"\[INFO\] \[([\w-]+)\]: process has finished cleanly", out)
        assert started and sorted(started) == sorted(finished), out
        assert self.process.returncode == 0, out
        assert "Traceback" not in out and "SIGTERM" not in out, out
        assert seconds < STOP_BOUND_S, f"stopped after {seconds:.1f} s\n{out}"

    def close(self) -> None:
        """Kill the whole group, launch or not: no node of a failed test outlives it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # every process of the group has ended
        self.process.wait()
        self._log.close()


@pytest.fixture
def launches(launch_overlay, stop_with_parent, tmp_path):
    """Start ``ros2 launch`` runs; whatever a failed test left running is killed."""
    started: list[Launch] = []

    def _start(*args: str) -> Launch:
        launch = Launch(list(args), tmp_path / f"launch-{len(started)}.log", stop_with_parent)
        started.append(launch)
        return launch

    yield _start
    for launch in started:
        launch.close()


def start_encoder(start_node, trial_file: Path):
    """A fake encoder: the trial's hip angles on /joint_states at 100 Hz, over and over.

    Clocked like an encoder driver (SCHED_FIFO where permitted, below the actuator's fast loop):
    the simulated actuator moves the wearer's hip as the angles arrive, so a replay descheduled
    for 0.25 s on a loaded machine and then catching up moved the simulated hip 0.4 rad within
    a few ms, and the simulated cable tension jumped to 309 N (the actuator released at once).
    """
    return start_node("trial_replay", *ros_arguments({"trial_file": str(trial_file),
                                                      "loop": True, "realtime_priority": 40}))


class Graph:
    """What the test node sees of the graph."""

    def __init__(self, node):
        self.node = node
        self.estimates: list[HipMomentEstimate] = []
        self.commands: list[AssistanceCommand] = []
        self.motor: list[MotorCommand] = []
        self.states: list[ActuatorState] = []
        for msg_type, topic, store in (
                (HipMomentEstimate, "/hip_moment/estimate", self.estimates),
                (AssistanceCommand, "/assistance/command", self.commands),
                (MotorCommand, "/actuator/motor_command", self.motor),
                (ActuatorState, "/actuator/state", self.states)):
            node.create_subscription(msg_type, topic, store.append, LISTEN)

    def nodes_up(self) -> bool:
        return ASSIST_NODES <= set(self.node.get_node_names())

    def assisting(self) -> bool:
        return (any(e.left_valid and e.right_valid for e in self.estimates)
                and any(max(c.left_force_n, c.right_force_n) > ASSISTING_FORCE_N
                        for c in self.commands)
                and any(m.left_velocity_rad_s != 0.0 for m in self.motor))


def assist_launch(launches, assets, *extra: str) -> Launch:
    return launches("exo_control", "assist.launch.py", f"model_folder:={assets.model}",
                    "backend:=onnxruntime", *extra)


def test_idle_assist_launch_keeps_assistance_disabled_with_zero_force(
        launches, assets, ros_node, spin_until):
    graph = Graph(ros_node)
    launch = assist_launch(launches, assets)
    assert spin_until(ros_node, lambda: graph.nodes_up() and graph.commands and graph.motor
                      and graph.states, STARTUP_BOUND_S), launch.output()
    spin_until(ros_node, lambda: False, 2.0)
    assert not graph.estimates  # no encoder, no estimate
    assert all(c.state == c.STATE_DISABLED and not c.enabled for c in graph.commands)
    assert all(c.left_force_n == 0.0 and c.right_force_n == 0.0 for c in graph.commands)
    assert max(max(s.left_force_reference_n, s.right_force_reference_n)
               for s in graph.states) == 0.0
    launch.assert_stopped_cleanly(launch.interrupt())


def test_assist_launch_with_an_encoder_estimates_and_drives_within_limits(
        launches, assets, ros_node, spin_until, start_node, tmp_path):
    graph = Graph(ros_node)
    recorder = start_node("topic_recorder", *ros_arguments({"output": str(tmp_path / "bag")}))
    launch = assist_launch(launches, assets, "enabled_on_start:=true")
    start_encoder(start_node, assets.trial)
    assert spin_until(ros_node, lambda: graph.nodes_up() and graph.assisting(),
                      STARTUP_BOUND_S), launch.output()
    spin_until(ros_node, lambda: False, 3.0)
    assert recorder.stop(signal.SIGINT) == 0, recorder.output()
    launch.assert_stopped_cleanly(launch.interrupt())

    recording = load_recording(tmp_path / "bag")
    assert recording.counts["/hip_moment/estimate"] > 100
    assert recording.counts["/actuator/motor_command"] > 100
    violations = limit_violations(recording, limits_from_params_files(config_files()))
    assert violations["total"] == 0, violations


def test_sigint_ends_every_node_of_a_running_graph_cleanly_every_time(
        launches, assets, ros_node, spin_until, start_node):
    graph = Graph(ros_node)
    start_encoder(start_node, assets.trial)
    for attempt in range(SIGINT_REPEATS):
        graph.motor.clear()
        launch = assist_launch(launches, assets, "enabled_on_start:=true")
        assert spin_until(ros_node, lambda: graph.nodes_up() and len(graph.motor) > 20,
                          STARTUP_BOUND_S), launch.output()
        # Odd attempts: launch alone gets SIGINT and forwards it; even ones: Ctrl-C's group.
        launch.assert_stopped_cleanly(launch.interrupt(whole_group=attempt % 2 == 0))
        # Give stopped nodes time to leave the graph before the next attempt. Not asserted: a
        # process that exited 0 can stay listed until its DDS participant's lease runs out
        # (seen once in eight stops for simulated_actuator); the exit status above is the
        # check, and the next attempt waits for fresh motor commands, not for names.
        spin_until(ros_node, lambda: not ASSIST_NODES & set(ros_node.get_node_names()), 10.0)


def test_exo_system_replay_records_a_bag_that_exo_analyze_reads(
        launches, assets, tmp_path):
    bag = tmp_path / "run1"
    launch = launches("launch/exo_system.launch.py", "mode:=replay",
                      f"trial_file:={assets.trial}", f"model_folder:={assets.model}",
                      f"record_output:={bag}")
    deadline = time.monotonic() + STARTUP_BOUND_S + 30.0  # the trial is 20 s long
    replayed = re.compile(r"\[trial_replay-\d+\]: process has finished cleanly")
    while not replayed.search(launch.output()) and time.monotonic() < deadline:
        assert launch.process.poll() is None, launch.output()
        time.sleep(0.5)
    assert replayed.search(launch.output()), launch.output()
    time.sleep(1.0)  # the assistance fades out after the last sample
    launch.assert_stopped_cleanly(launch.interrupt())

    analysis = tmp_path / "analysis"
    result = subprocess.run(["ros2", "run", "exo_control", "exo-analyze", str(bag),
                             "--output", str(analysis)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((analysis / "metrics.json").read_text())
    accuracy = metrics["estimate_vs_measured_moment"]["both"]
    assert accuracy["samples"] > 1000 and math.isfinite(accuracy["rmse"]), accuracy
