"""ROS 2 node ``hip_moment_estimator``: /joint_states -> TCN ensemble -> /hip_moment/estimate.

A thin shell over ``HipMomentEstimator``: it declares the parameters, loads and checks the
model folder (refusing to start on a mismatch), picks a backend with fallback, and moves
messages in and out. Topics and QoS come from the topic table (exo_common.topics).
"""

from __future__ import annotations

from exo_common.diagnostics import Diagnostics
from exo_common.node_params import declare_config
from exo_common.node_runner import request_realtime_priority, run_node
from exo_common.topics import HIP_MOMENT_ESTIMATE, JOINT_STATES, publisher, subscription
from k2muse_model.model_folder import ArtifactError
from rclpy.node import Node
from sensor_msgs.msg import JointState

from exo_msgs.msg import HipMomentEstimate
from k2muse_inference.backends import (
    BackendOptions,
    BackendUnavailable,
    ModelMismatch,
    select_backend,
)
from k2muse_inference.ensemble import Ensemble
from k2muse_inference.estimator import HipMomentEstimator
from k2muse_inference.estimator_config import EstimatorNodeConfig
from k2muse_inference.model import (
    Expectations,
    FeatureBuilder,
    ManifestMismatch,
    ModelSpec,
    load_model_spec,
)
from k2muse_inference.window import WindowEnd, WindowSpec

NODE_NAME = "hip_moment_estimator"


class StartupError(RuntimeError):
    """The node cannot run with this model folder or configuration."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot start: {reason}")


class HipMomentEstimatorNode(Node):
    """Subscribes to hip joint states, publishes ensemble hip-moment estimates."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self.config: EstimatorNodeConfig = declare_config(self, EstimatorNodeConfig)
        request_realtime_priority(self, self.config.realtime_priority)
        self.estimator, self.spec, self.backend_name = self._build()
        self._joint_names = (self.config.left_joint, self.config.right_joint)
        self._index_cache: tuple[tuple[str, ...], tuple[int | None, ...]] = ((), (None, None))
        self._was_stale = True

        self._publisher = publisher(self, HIP_MOMENT_ESTIMATE)
        self._diagnostics = Diagnostics(self, "k2muse_inference", NODE_NAME)
        subscription(self, JOINT_STATES, self._on_joint_state)
        self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics)

    def _build(self) -> tuple[HipMomentEstimator, ModelSpec, str]:
        config = self.config
        folder = config.model_folder
        if not folder:
            raise StartupError("parameter model_folder is not set")
        expected = Expectations(
            sample_rate_hz=config.expected_sample_rate_hz,
            window_length=config.expected_window_length,
            inputs=tuple(config.expected_inputs),
            mode_keys=tuple(config.mode_keys),
        )
        requested = config.backend
        try:
            spec = load_model_spec(folder, expected)
            selection = select_backend(requested, spec.ensemble, BackendOptions(
                onnx_threads=config.onnx_threads,
                onnx_prefer_simplified=config.onnx_prefer_simplified,
                torch_threads=config.torch_threads,
            ))
            window = WindowSpec(
                sample_rate_hz=spec.sample_rate_hz,
                window_length=spec.window_length,
                max_gap_s=config.max_gap_s,
                min_angle_rad=config.min_angle_rad,
                max_angle_rad=config.max_angle_rad,
                max_abs_velocity_rad_s=config.max_abs_velocity_rad_s,
                window_end=WindowEnd(config.window_end),
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
            Ensemble(selection.backend, config.max_abs_moment_nm_per_kg),
            stale_timeout_s=config.stale_timeout_s,
            max_input_age_s=config.max_input_age_s,
            max_stamp_lead_s=config.max_stamp_lead_s,
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
        out.header.frame_id = msg.header.frame_id
        # the window's last instant: the input's stamp, or the model-grid instant before it
        out.header.stamp.sec, out.header.stamp.nanosec = divmod(estimate.stamp_ns, 1_000_000_000)
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
            "ensemble_size": len(self.spec.ensemble.mode_keys),
            **health.values,
        }
        self._diagnostics.publish(health.level, health.message, values,
                                  hardware_id=self.spec.model_id)


def main(args: list[str] | None = None) -> int:
    """Console entry point: run the node until stopped; exit 1 with one line if it cannot start."""
    return run_node(HipMomentEstimatorNode, args, user_errors=(StartupError,))
