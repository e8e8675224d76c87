"""launch_pytest: replay.launch.py through the Python launch API, judged on its recording.

The session's generated trial (participant P02, held out) is replayed through the TCN trained
on P01 (``assets`` in the workspace conftest), with topic_recorder beside the graph. Once
trial_replay has played the whole trial, the launch is shut down (SIGINT to every process);
every process must have exited with 0 within STOP_BOUND_S, and the recording is judged like
the process-level graph test judges its own: estimate against the replayed measured moment,
and no limit exceeded.

Needs launch_pytest and the colcon overlay (``make test``, ``colcon test``); skips elsewhere.
"""

import time
from pathlib import Path

import pytest

launch_pytest = pytest.importorskip("launch_pytest", reason="no ROS 2 launch stack: neither"
                                    " ../shared/ros2-launch nor a ROS 2 install is available")
from exo_control.analyze import limits_from_params_files, load_recording, summarise  # noqa: E402
from exo_control.graph_processes import config_files  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription, RegisterEventHandler  # noqa: E402
from launch.event_handlers import OnProcessExit  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

pytestmark = pytest.mark.ros_launch

REPLAY_BOUND_S = 120.0  # a 20 s trial, plus startup of five nodes on a busy 2-core machine
STOP_BOUND_S = 5.0
ESTIMATE_RMSE_BOUND = 0.35  # N·m/kg, as in test_graph: the synthetic moments span about ±1
ESTIMATE_R2_BOUND = 0.5
GRAPH = {"trial_replay", "hip_moment_estimator", "assistance_profile", "admittance_controller",
         "simulated_actuator", "topic_recorder"}


@launch_pytest.fixture
def replay_graph(launch_overlay, assets, tmp_path):
    from ament_index_python.packages import get_package_share_directory

    replay = Path(get_package_share_directory("exo_control")) / "launch" / "replay.launch.py"
    run = {"bag": tmp_path / "bag", "exits": {}}

    def note_exit(event, _context):
        run["exits"][Path(event.cmd[0]).name] = (event.returncode, time.monotonic())

    description = LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(replay)), launch_arguments={
            "trial_file": str(assets.trial), "model_folder": str(assets.model),
            "backend": "onnxruntime", "body_mass_kg": str(assets.body_mass_kg)}.items()),
        Node(package="exo_control", executable="topic_recorder", output="screen",
             parameters=[{"output": str(run["bag"])}]),
        RegisterEventHandler(OnProcessExit(on_exit=note_exit)),
        launch_pytest.actions.ReadyToTest(),
    ])
    return description, run


@pytest.mark.launch(fixture=replay_graph)
def test_replay_launch_estimates_within_accuracy_and_limits(replay_graph):
    _, run = replay_graph
    exits = run["exits"]
    deadline = time.monotonic() + REPLAY_BOUND_S
    while "trial_replay" not in exits and time.monotonic() < deadline:
        time.sleep(0.2)
    assert exits.get("trial_replay", (None,))[0] == 0, exits
    time.sleep(1.0)  # the assistance fades out after the last sample
    running = set(GRAPH) - set(exits)
    assert running == GRAPH - {"trial_replay"}, exits  # nothing else ended early
    stop_requested = time.monotonic()
    yield  # launch_pytest shuts the launch down (SIGINT to every process) and waits

    assert set(exits) == GRAPH, exits
    assert all(code == 0 for code, _ in exits.values()), exits
    slowest = max(at for name, (_, at) in exits.items() if name in running) - stop_requested
    assert slowest < STOP_BOUND_S, exits
    recording = load_recording(run["bag"])
    metrics = summarise(recording, limits_from_params_files(config_files()))
    accuracy = metrics["estimate_vs_measured_moment"]["both"]
    assert accuracy["samples"] > 2 * 1000, accuracy  # of 2 × 1900 full windows in 20 s
    assert accuracy["rmse"] < ESTIMATE_RMSE_BOUND, accuracy
    assert accuracy["r2"] > ESTIMATE_R2_BOUND, accuracy
    assert metrics["limit_violations"]["total"] == 0, metrics["limit_violations"]
    assert metrics["message_counts"]["/actuator/motor_command"] > 500  # 100 Hz monitoring
