"""Live assistance: encoder joint states -> estimator -> assistance -> controller -> actuator.

    ros2 launch exo_control assist.launch.py model_folder:=/path/to/model backend:=tensorrt

/joint_states comes from the hardware encoder driver (``encoder_package``/``encoder_executable``
start it here; leave them empty when it runs elsewhere), or from exo_hardware's
``hip_angle_publisher`` (``hip_angle_source:=encoders|imu``). The actuator is the simulated one;
``driver:=tmotor|dephy`` runs the same node on exo_hardware's driver with exo_hardware's
config/<driver>.yaml (or ``hardware_config``), named to the driver in EXO_HARDWARE_CONFIG
(docs/hardware.md); ``actuator_executable`` names a hardware node of its own that speaks
/actuator/force_reference and /actuator/state instead (docs/control.md, "Hardware boundary").
The nodes and their parameter files come from the graph description (exo_control.graph):
every node loads its YAML, and the launch arguments below, named like the parameters they set,
override the usual ones.
"""

from exo_control.graph import ACTUATOR, ASSISTANCE, CONTROLLER, ESTIMATOR, HIP_ANGLES
from exo_control.graph_launch import launch_node, same_named
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    "model_folder": ("", "model folder with manifest.json (k2muse_learning output)"),
    "backend": ("auto", "inference backend: auto, tensorrt, onnxruntime or pytorch"),
    "estimator": ("true", "start hip_moment_estimator (false: estimates come from elsewhere)"),
    "side": ("both", "assisted side: both, left or right"),
    "gain": ("0.2", "fraction of the estimated biological hip moment to assist"),
    "body_mass_kg": ("75.0", "wearer's body mass, kg"),
    "enabled_on_start": ("false", "start assisting without waiting for /assistance/enable"),
    "actuator_package": ("exo_control", "package of the actuator driver node"),
    "actuator_executable": ("", "hardware actuator driver node (empty: simulated_actuator)"),
    "driver": ("simulated", "driver of simulated_actuator: simulated, or an exo_hardware driver"
               " (tmotor, dephy)"),
    "hardware_config": ("", "parameter file for a hardware driver (empty: exo_hardware's"
                        " config/<driver>.yaml)"),
    "hip_angle_source": ("", "start exo_hardware's hip_angle_publisher: encoders or imu (empty:"
                         " /joint_states comes from encoder_executable or elsewhere)"),
    "encoder_package": ("", "package of the encoder driver publishing /joint_states"),
    "encoder_executable": ("", "encoder driver node (empty: /joint_states comes from elsewhere)"),
    "left_joint": ("left_hip_joint", "JointState name of the left hip"),
    "right_joint": ("right_hip_joint", "JointState name of the right hip"),
}


def _is_empty(argument):
    return PythonExpression(["'", LaunchConfiguration(argument), "' == ''"])


def _hardware_config(*stem):
    """exo_hardware's config/<stem>.yaml, resolved only when a node that uses it starts."""
    return [FindPackageShare("exo_hardware"), "/config/", *stem, ".yaml"]


def _simulated(simulated):
    """The actuator node runs here with the simulated driver (or with a hardware one)."""
    arg = LaunchConfiguration
    return IfCondition(PythonExpression([
        "'", arg("actuator_executable"), "' == '' and ('", arg("driver"), "' == 'simulated') == ",
        str(simulated)]))


def generate_launch_description():
    """Declare the arguments and the control graph."""
    arg = LaunchConfiguration
    joint_names = ParameterValue(
        PythonExpression(["['", arg("left_joint"), "', '", arg("right_joint"), "']"]),
        value_type=list[str])
    hardware_file = PythonExpression(["'", arg("hardware_config"), "' or '",
                                      *_hardware_config(arg("driver")), "'"])
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=description)
          for name, (default, description) in ARGUMENTS.items()),
        Node(
            package=arg("encoder_package"), executable=arg("encoder_executable"),
            name="encoder_driver", output="screen",
            condition=UnlessCondition(_is_empty("encoder_executable")),
        ),
        launch_node(ESTIMATOR, same_named("model_folder", "backend", "left_joint", "right_joint"),
                    condition=IfCondition(arg("estimator"))),
        launch_node(ASSISTANCE, {
            "side": arg("side"),
            "gain": ParameterValue(arg("gain"), value_type=float),
            "body_mass_kg": ParameterValue(arg("body_mass_kg"), value_type=float),
            "enabled_on_start": ParameterValue(arg("enabled_on_start"), value_type=bool),
        }),
        launch_node(CONTROLLER),
        launch_node(ACTUATOR, {"joint_names": joint_names}, condition=_simulated(True)),
        # A hardware driver: its own parameter file instead of the simulation's.
        Node(
            package=ACTUATOR.package, executable=ACTUATOR.executable, name=ACTUATOR.name,
            output="screen", remappings=list(ACTUATOR.remappings),
            parameters=[hardware_file, {"driver": arg("driver"), "joint_names": joint_names}],
            additional_env={"EXO_HARDWARE_CONFIG": hardware_file},
            condition=_simulated(False),
        ),
        launch_node(HIP_ANGLES, {"source": arg("hip_angle_source"), "joint_names": joint_names},
                    condition=UnlessCondition(_is_empty("hip_angle_source"))),
        Node(
            package=arg("actuator_package"), executable=arg("actuator_executable"),
            name="actuator_driver", output="screen",
            condition=UnlessCondition(_is_empty("actuator_executable")),
        ),
    ])
