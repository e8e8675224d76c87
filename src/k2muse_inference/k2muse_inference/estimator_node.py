"""ROS 2 node ``hip_moment_estimator``: /joint_states -> TCN ensemble -> /hip_moment/estimate.

A thin shell over ``HipMomentEstimator``: it declares the parameters, loads and checks the
model folder (refusing to start on a mismatch), picks a backend with fallback, and moves
messages in and out. Topics and QoS follow docs/architecture.md section 3.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from exo_msgs.msg import HipMomentEstimate
from k2muse_inference.backends import (
    BACKEND_NAMES,
    BackendOptions,
    BackendUnavailable,
    ModelMismatch,
    select_backend,
)
from k2muse_inference.ensemble import Ensemble
from k2muse_inference.estimator import OK, WARN, HipMomentEstimator
from k2muse_inference.model import (
    Expectations,
    FeatureBuilder,
    ManifestMismatch,
    ModelSpec,
    load_model_spec,
)
from k2muse_inference.model_folder import ArtifactError
from k2muse_inference.node_runner import request_realtime_priority, run_node
from k2muse_inference.window import WindowSpec

NODE_NAME = "hip_moment_estimator"
LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN}


def _reliable(depth: int) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE
    )


# Best effort, so an encoder driver publishing with qos_profile_sensor_data is heard as well as
# a reliable replay; a short queue, since every sample feeds the window but a backlog must be
# dropped rather than turned into latency.
JOINT_STATES_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                              reliability=ReliabilityPolicy.BEST_EFFORT)


def _float(description: str, low: float, high: float) -> ParameterDescriptor:
    return ParameterDescriptor(
        description=description,
        floating_point_range=[FloatingPointRange(from_value=low, to_value=high)],
    )


def _int(description: str, low: int, high: int) -> ParameterDescriptor:
    return ParameterDescriptor(
        description=description, integer_range=[IntegerRange(from_value=low, to_value=high)]
    )


def _text(description: str) -> ParameterDescriptor:
    return ParameterDescriptor(description=description)


# name -> (default, descriptor); string arrays default to "not set" = empty.
PARAMETERS = {
    "model_folder": ("", _text("model folder with manifest.json (written by k2muse_learning)")),
    "backend": ("auto", _text(f"auto or one of {', '.join(BACKEND_NAMES)}; falls back in order "
                              "tensorrt, onnxruntime, pytorch when the choice cannot load")),
    "onnx_threads": (1, _int("ONNX Runtime intra-op threads", 1, 64)),
    "onnx_prefer_simplified": (True, _text("use onnx_sim/ files before onnx/ ones")),
    "torch_threads": (1, _int("PyTorch intra-op threads", 1, 64)),
    "left_joint": ("left_hip_joint", _text("JointState name of the left hip (flexion +, rad)")),
    "right_joint": ("right_hip_joint", _text("JointState name of the right hip")),
    "expected_sample_rate_hz": (0.0, _float(
        "refuse a model whose sample rate differs (0: accept the manifest's)", 0.0, 10000.0)),
    "expected_window_length": (0, _int(
        "refuse a model whose window length differs (0: accept the manifest's)", 0, 100000)),
    "expected_inputs": (Parameter.Type.STRING_ARRAY, _text(
        "refuse a model whose input channels differ, e.g. [hip_angle, hip_velocity]")),
    "mode_keys": (Parameter.Type.STRING_ARRAY, _text(
        "per-mode models to average (not set: every model of the ensemble)")),
    "max_gap_s": (0.05, _float("a longer gap between samples restarts the window, s",
                               0.001, 10.0)),
    "min_angle_rad": (-1.0, _float("samples below are absurd and restart the window, rad",
                                   -3.2, 0.0)),
    "max_angle_rad": (2.6, _float("samples above are absurd and restart the window, rad",
                                  0.0, 3.2)),
    "max_abs_velocity_rad_s": (20.0, _float(
        "a sample implying a faster hip is an encoder glitch and is skipped, rad/s", 0.1, 1000.0)),
    "max_abs_moment_nm_per_kg": (5.0, _float(
        "an ensemble output beyond this is rejected (leg marked invalid), N·m/kg", 0.1, 100.0)),
    "stale_timeout_s": (0.1, _float("input silent longer than this is stale, s", 0.005, 10.0)),
    "max_input_age_s": (0.5, _float(
        "drop samples whose stamp is older than this on arrival, s (0: no check)", 0.0, 60.0)),
    "max_stamp_lead_s": (0.1, _float(
        "drop samples stamped further than this ahead of the receive clock, s", 0.001, 60.0)),
    "diagnostics_period_s": (1.0, _float("period of /diagnostics messages, s", 0.05, 60.0)),
    "realtime_priority": (0, _int("SCHED_FIFO priority of the node's threads (0: normal"
                                   " scheduling; warns without permission)", 0, 98)),
}


class StartupError(RuntimeError):
    """The node cannot run with this model folder or configuration."""


class HipMomentEstimatorNode(Node):
    """Subscribes to hip joint states, publishes ensemble hip-moment estimates."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        try:
            for name, (default, descriptor) in PARAMETERS.items():
                self.declare_parameter(name, default, descriptor)
        except (InvalidParameterValueException, InvalidParameterTypeException) as error:
            raise StartupError(str(error)) from error
        request_realtime_priority(self, self._param("realtime_priority"))
        self.estimator, self.spec, self.backend_name = self._build()
        self._joint_names = (self._param("left_joint"), self._param("right_joint"))
        self._index_cache: tuple[tuple[str, ...], tuple[int | None, ...]] = ((), (None, None))
        self._was_stale = True

        self._publisher = self.create_publisher(HipMomentEstimate, "/hip_moment/estimate",
                                                _reliable(100))
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", _reliable(10))
        self.create_subscription(JointState, "/joint_states", self._on_joint_state,
                                 JOINT_STATES_QOS)
        self.create_timer(self._param("diagnostics_period_s"), self._publish_diagnostics)

    def _param(self, name: str):
        try:
            return self.get_parameter(name).value
        except ParameterUninitializedException:  # a string array left unset
            return None

    def _build(self) -> tuple[HipMomentEstimator, ModelSpec, str]:
        folder = self._param("model_folder")
        if not folder:
            raise StartupError("parameter model_folder is not set")
        expected = Expectations(
            sample_rate_hz=self._param("expected_sample_rate_hz"),
            window_length=self._param("expected_window_length"),
            inputs=tuple(self._param("expected_inputs") or ()),
            mode_keys=tuple(self._param("mode_keys") or ()),
        )
        requested = self._param("backend")
        try:
            spec = load_model_spec(folder, expected)
            selection = select_backend(requested, spec.ensemble, BackendOptions(
                onnx_threads=self._param("onnx_threads"),
                onnx_prefer_simplified=self._param("onnx_prefer_simplified"),
                torch_threads=self._param("torch_threads"),
            ))
            window = WindowSpec(
                sample_rate_hz=spec.sample_rate_hz,
                window_length=spec.window_length,
                max_gap_s=self._param("max_gap_s"),
                min_angle_rad=self._param("min_angle_rad"),
                max_angle_rad=self._param("max_angle_rad"),
                max_abs_velocity_rad_s=self._param("max_abs_velocity_rad_s"),
            )
        except (ArtifactError, ManifestMismatch, ModelMismatch, BackendUnavailable,
                ValueError) as error:
            raise StartupError(str(error)) from error
        self.get_logger().info(selection.describe(requested))
        self.get_logger().info(
            f"model {spec.model_id}: {len(spec.ensemble.mode_keys)} per-mode models "
            f"{list(spec.ensemble.mode_keys)}, {spec.window_length} samples at "
            f"{spec.sample_rate_hz:g} Hz, inputs {list(spec.inputs)}"
            + (" (trained on SYNTHETIC data)" if spec.synthetic_training_data else "")
        )
        estimator = HipMomentEstimator(
            window,
            FeatureBuilder(spec.inputs, spec.sample_rate_hz),
            Ensemble(selection.backend, self._param("max_abs_moment_nm_per_kg")),
            stale_timeout_s=self._param("stale_timeout_s"),
            max_input_age_s=self._param("max_input_age_s"),
            max_stamp_lead_s=self._param("max_stamp_lead_s"),
        )
        return estimator, spec, selection.backend.name

    def _leg_indices(self, names: list[str]) -> tuple[int | None, int | None]:
        """Positions of the two hip joints in a JointState, cached per name list."""
        key = tuple(names)
        if key != self._index_cache[0]:
            lookup = {name: i for i, name in enumerate(key)}
            self._index_cache = (key, tuple(lookup.get(n) for n in self._joint_names))
        return self._index_cache[1]

    def _on_joint_state(self, msg: JointState) -> None:
        received_ns = self.get_clock().now().nanoseconds
        positions = msg.position
        angles = tuple(
            float(positions[i]) if i is not None and i < len(positions) else None
            for i in self._leg_indices(msg.name)
        )
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        estimate = self.estimator.on_sample(stamp_ns, angles, received_ns)
        if estimate is None:
            return
        out = HipMomentEstimate()
        out.header = msg.header
        out.left_moment_nm_per_kg, out.right_moment_nm_per_kg = estimate.moments_nm_per_kg
        out.left_valid, out.right_valid = estimate.valid
        out.model_id = self.spec.model_id
        out.backend = self.backend_name
        out.ensemble_size = len(self.spec.ensemble.mode_keys)
        out.inference_latency_s = estimate.latency_s
        self._publisher.publish(out)

    def _publish_diagnostics(self) -> None:
        now = self.get_clock().now()
        health = self.estimator.health(now.nanoseconds)
        stale = self.estimator.is_stale(now.nanoseconds)
        if stale and not self._was_stale:
            self.get_logger().warning(health.message)
        elif not stale and self._was_stale:
            self.get_logger().info("joint states arriving; estimating")
        self._was_stale = stale
        values = {
            "backend": self.backend_name,
            "model_id": self.spec.model_id,
            "ensemble_size": str(len(self.spec.ensemble.mode_keys)),
            **health.values,
        }
        status = DiagnosticStatus(
            level=LEVELS.get(health.level, DiagnosticStatus.ERROR),
            name=f"{self.get_name()}: hip moment estimate",
            message=health.message,
            hardware_id=self.spec.model_id,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = now.to_msg()
        self._diagnostics.publish(array)


def main(args: list[str] | None = None) -> int:
    """Console entry point: run the node until stopped; exit 1 with one line if it cannot start."""
    return run_node(HipMomentEstimatorNode, args, errors={StartupError: (1, "cannot start: ")})
