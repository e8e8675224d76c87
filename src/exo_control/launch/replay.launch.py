"""Replay a K2MUSE trial through the assistance graph with the simulated actuator.

    ros2 launch exo_control replay.launch.py trial_file:=/path/trial.h5 model_folder:=/path/model

trial_replay (its config/replay.yaml, then the arguments below) publishes /joint_states (hip
angle, velocity and the measured moment as effort) and /gait_events at the trial's capture rate;
everything downstream is assist.launch.py with the simulated actuator (the replayed hip angles
move its cable anchors). Playback waits until the graph listens on /joint_states (the estimator,
once its model is loaded, and the simulated actuator), so a slow start loses no samples.
"""

from exo_control.graph import TRIAL_REPLAY
from exo_control.graph_launch import launch_node
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

REPLAY_ARGUMENTS = {
    "trial_file": ("", "processed trial .h5 or rosbag2 bag folder to replay"),
    "rate_scale": ("1.0", "playback speed (1.0: capture rate)"),
    "loop": ("false", "start again at the end of the trial"),
    "start_offset_s": ("0.0", "skip this much of the trial, s"),
}
# Forwarded unchanged to assist.launch.py.
GRAPH_ARGUMENTS = {
    "model_folder": ("", "model folder with manifest.json (k2muse_learning output)"),
    "backend": ("auto", "inference backend: auto, tensorrt, onnxruntime or pytorch"),
    "estimator": ("true", "start hip_moment_estimator"),
    "side": ("both", "assisted side: both, left or right"),
    "gain": ("0.2", "fraction of the estimated biological hip moment to assist"),
    "body_mass_kg": ("75.0", "wearer's body mass, kg"),
    "enabled_on_start": ("true", "assist from the start of the replay"),
    "left_joint": ("left_hip_joint", "JointState name of the left hip"),
    "right_joint": ("right_hip_joint", "JointState name of the right hip"),
}


def generate_launch_description():
    """Declare the arguments, the replay node and the included control graph."""
    arg = LaunchConfiguration
    joint_names = ParameterValue(
        PythonExpression(["['", arg("left_joint"), "', '", arg("right_joint"), "']"]),
        value_type=list[str])
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=description)
          for name, (default, description) in {**REPLAY_ARGUMENTS, **GRAPH_ARGUMENTS}.items()),
        launch_node(TRIAL_REPLAY, {
            "trial_file": arg("trial_file"),
            "rate_scale": ParameterValue(arg("rate_scale"), value_type=float),
            "loop": ParameterValue(arg("loop"), value_type=bool),
            "start_offset_s": ParameterValue(arg("start_offset_s"), value_type=float),
            "joint_names": joint_names,
            "wait_for_subscribers": ParameterValue(
                PythonExpression(["2 if '", arg("estimator"), "'.lower() in ('true', '1') else 1"]),
                value_type=int),
        }),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution(
                [FindPackageShare("exo_control"), "launch", "assist.launch.py"])),
            launch_arguments={**{name: arg(name) for name in GRAPH_ARGUMENTS},
                              "actuator_executable": "", "encoder_executable": ""}.items(),
        ),
    ])
