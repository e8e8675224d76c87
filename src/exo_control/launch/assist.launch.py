"""Live assistance: encoder joint states -> estimator -> assistance -> controller -> actuator.

    ros2 launch exo_control assist.launch.py model_dir:=/path/to/model backend:=tensorrt

/joint_states comes from the hardware encoder driver (``encoder_package``/``encoder_executable``
start it here; leave them empty when it runs elsewhere). The actuator is the simulated one
unless ``actuator_executable`` names a hardware node that speaks /actuator/force_reference
and /actuator/state (docs/control.md, "Hardware boundary"). Parameters come from
config/*.yaml; the launch arguments below override the usual ones.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    "model_dir": ("", "model folder with manifest.json (k2muse_learning output)"),
    "backend": ("auto", "inference backend: auto, tensorrt, onnxruntime or pytorch"),
    "estimator": ("true", "start hip_moment_estimator (false: estimates come from elsewhere)"),
    "side": ("both", "assisted side: both, left or right"),
    "gain": ("0.2", "fraction of the estimated biological hip moment to assist"),
    "body_mass_kg": ("75.0", "wearer's body mass, kg"),
    "enabled_on_start": ("false", "start assisting without waiting for /assistance/enable"),
    "actuator_package": ("exo_control", "package of the actuator driver node"),
    "actuator_executable": ("", "hardware actuator driver node (empty: simulated_actuator)"),
    "encoder_package": ("", "package of the encoder driver publishing /joint_states"),
    "encoder_executable": ("", "encoder driver node (empty: /joint_states comes from elsewhere)"),
    "left_joint": ("left_hip_joint", "JointState name of the left hip"),
    "right_joint": ("right_hip_joint", "JointState name of the right hip"),
}


def _config(name):
    return PathJoinSubstitution([FindPackageShare("exo_control"), "config", name])


def _is_empty(argument):
    return PythonExpression(["'", LaunchConfiguration(argument), "' == ''"])


def generate_launch_description():
    """Declare the arguments and the control graph."""
    arg = LaunchConfiguration
    joint_names = ParameterValue(
        PythonExpression(["['", arg("left_joint"), "', '", arg("right_joint"), "']"]),
        value_type=list[str])
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=description)
          for name, (default, description) in ARGUMENTS.items()),
        Node(
            package=arg("encoder_package"), executable=arg("encoder_executable"),
            name="encoder_driver", output="screen",
            condition=UnlessCondition(_is_empty("encoder_executable")),
        ),
        Node(
            package="k2muse_inference", executable="hip_moment_estimator", output="screen",
            parameters=[{"model_folder": arg("model_dir"), "backend": arg("backend"),
                         "left_joint": arg("left_joint"), "right_joint": arg("right_joint")}],
            condition=IfCondition(arg("estimator")),
        ),
        Node(
            package="exo_control", executable="assistance_profile", output="screen",
            parameters=[_config("assistance.yaml"), {
                "side": arg("side"),
                "gain": ParameterValue(arg("gain"), value_type=float),
                "body_mass_kg": ParameterValue(arg("body_mass_kg"), value_type=float),
                "enabled_on_start": ParameterValue(arg("enabled_on_start"), value_type=bool),
            }],
        ),
        Node(
            package="exo_control", executable="admittance_controller", output="screen",
            parameters=[_config("controller.yaml")],
        ),
        Node(
            package="exo_control", executable="simulated_actuator", output="screen",
            parameters=[_config("actuator.yaml"), {"joint_names": joint_names}],
            condition=IfCondition(_is_empty("actuator_executable")),
        ),
        Node(
            package=arg("actuator_package"), executable=arg("actuator_executable"),
            name="actuator_driver", output="screen",
            condition=UnlessCondition(_is_empty("actuator_executable")),
        ),
    ])
