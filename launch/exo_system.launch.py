"""Entry point from the repository root: exo_bringup's system launch, arguments passed through.

    ros2 launch launch/exo_system.launch.py mode:=live model_folder:=/path/model backend:=tensorrt
    ros2 launch launch/exo_system.launch.py mode:=replay trial_file:=/path/trial.h5 \
        model_folder:=/path/model record_output:=/tmp/run1

The graph, its arguments and the recorder are documented in exo_bringup's exo_system.launch.py.
"""

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    """Include exo_bringup's exo_system.launch.py; every argument given here reaches it."""
    system = PathJoinSubstitution([FindPackageShare("exo_bringup"), "launch",
                                   "exo_system.launch.py"])
    return LaunchDescription([IncludeLaunchDescription(PythonLaunchDescriptionSource(system))])
