"""Whole system: the live or the replay graph of exo_control, optionally recorded to MCAP.

    ros2 launch launch/exo_system.launch.py mode:=live model_dir:=/path/model backend:=tensorrt
    ros2 launch launch/exo_system.launch.py mode:=replay trial_file:=/path/trial.h5 \
        model_dir:=/path/model record_output:=/tmp/run1

Every other argument (gain, side, body_mass_kg, ...) is passed through to the included
exo_control launch file (assist.launch.py or replay.launch.py), which documents them.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition, UnlessCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _package_launch(file_name, mode):
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("exo_control"), "launch", file_name])),
        condition=IfCondition(PythonExpression(["'", LaunchConfiguration("mode"), "' == '",
                                                mode, "'"])),
    )


def generate_launch_description():
    """Pick the graph by ``mode`` and start the recorder when ``record_output`` is set."""
    return LaunchDescription([
        DeclareLaunchArgument("mode", default_value="live", choices=["live", "replay"],
                              description="live: encoders and hardware; replay: a recorded trial"),
        DeclareLaunchArgument("record_output", default_value="",
                              description="bag folder to record the graph to (empty: none)"),
        _package_launch("assist.launch.py", "live"),
        _package_launch("replay.launch.py", "replay"),
        Node(
            package="exo_control", executable="topic_recorder", output="screen",
            parameters=[{"output": LaunchConfiguration("record_output")}],
            condition=UnlessCondition(PythonExpression(
                ["'", LaunchConfiguration("record_output"), "' == ''"])),
        ),
    ])
