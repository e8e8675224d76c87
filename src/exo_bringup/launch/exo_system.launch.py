"""Whole system: the live or the replay graph of exo_control, optionally recorded to MCAP.

    ros2 launch exo_bringup exo_system.launch.py mode:=live model_folder:=/path/model \
        backend:=tensorrt
    ros2 launch exo_bringup exo_system.launch.py mode:=replay trial_file:=/path/trial.h5 \
        model_folder:=/path/model record_output:=/tmp/run1

(``ros2 launch launch/exo_system.launch.py ...`` from the repository root is the same.) Every
other argument (gain, side, body_mass_kg, ...) is passed through to the included exo_control
launch file (assist.launch.py or replay.launch.py), which documents them. The recorder is the
graph description's (exo_control.graph.RECORDER): this package's config/recorder.yaml, then
``record_output`` as its ``output`` parameter.
"""

from exo_control.graph import LIVE, RECORDER, REPLAY
from exo_control.graph_launch import launch_node
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition, UnlessCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.substitutions import FindPackageShare

GRAPH_LAUNCH_FILES = {LIVE: "assist.launch.py", REPLAY: "replay.launch.py"}


def _graph_launch(mode):
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare("exo_control"), "launch", GRAPH_LAUNCH_FILES[mode]])),
        condition=IfCondition(PythonExpression(["'", LaunchConfiguration("mode"), "' == '",
                                                mode, "'"])),
    )


def generate_launch_description():
    """Pick the graph by ``mode`` and start the recorder when ``record_output`` is set."""
    return LaunchDescription([
        DeclareLaunchArgument("mode", default_value=LIVE, choices=list(GRAPH_LAUNCH_FILES),
                              description="live: encoders and hardware; replay: a recorded trial"),
        DeclareLaunchArgument("record_output", default_value="",
                              description="bag folder to record the graph to (empty: none)"),
        *(_graph_launch(mode) for mode in GRAPH_LAUNCH_FILES),
        launch_node(RECORDER, {"output": LaunchConfiguration("record_output")},
                    condition=UnlessCondition(PythonExpression(
                        ["'", LaunchConfiguration("record_output"), "' == ''"]))),
    ])
