"""Parameters of the ``hip_moment_estimator`` node as a typed configuration (no ROS).

The node declares one ROS parameter per field (exo_common.node_params); config/estimator.yaml
lists them with these defaults. The empty string arrays ``expected_inputs`` and ``mode_keys``
are parameters left unset: take the manifest's.
"""

from __future__ import annotations

from dataclasses import dataclass

from exo_common.params import spec, validate_fields

from k2muse_inference.backends import BACKEND_NAMES
from k2muse_inference.window import WindowEnd


@dataclass(frozen=True)
class EstimatorNodeConfig:
    """What the estimator node reads at start-up (all read-only while it runs)."""

    model_folder: str = spec("", "model folder with manifest.json (written by k2muse_learning)")
    backend: str = spec("auto", f"auto or one of {', '.join(BACKEND_NAMES)}; falls back in order"
                        " tensorrt, onnxruntime, pytorch when the choice cannot load")
    onnx_threads: int = spec(1, "ONNX Runtime intra-op threads", 1, 64)
    onnx_prefer_simplified: bool = spec(True, "use onnx_sim/ files before onnx/ ones")
    torch_threads: int = spec(1, "PyTorch intra-op threads", 1, 64)
    left_joint: str = spec("left_hip_joint", "JointState name of the left hip (flexion +, rad)")
    right_joint: str = spec("right_hip_joint", "JointState name of the right hip")
    expected_sample_rate_hz: float = spec(
        0.0, "refuse a model whose sample rate differs (0: accept the manifest's)", 0.0, 10000.0)
    expected_window_length: int = spec(
        0, "refuse a model whose window length differs (0: accept the manifest's)", 0, 100000)
    expected_inputs: list[str] = spec(
        (), "refuse a model whose input channels differ, e.g. [hip_angle, hip_velocity]")
    mode_keys: list[str] = spec(
        (), "per-mode models to average (not set: every model of the ensemble)")
    max_gap_s: float = spec(0.05, "a longer gap between samples restarts the window, s",
                            0.001, 10.0)
    min_angle_rad: float = spec(-1.0, "samples below are absurd and restart the window, rad",
                                -3.2, 0.0)
    max_angle_rad: float = spec(2.6, "samples above are absurd and restart the window, rad",
                                0.0, 3.2)
    max_abs_velocity_rad_s: float = spec(
        20.0, "a sample implying a faster hip is an encoder glitch and is skipped, rad/s",
        0.1, 1000.0)
    window_end: str = spec(
        "newest_sample", "where a window ends: newest_sample (estimate at each input stamp) or"
        " model_grid (at the model-period instant before it, once per period: jittered input"
        " still streams, one model step per estimate)",
        choices=tuple(end.value for end in WindowEnd))
    max_abs_moment_nm_per_kg: float = spec(
        5.0, "an ensemble output beyond this is rejected (leg marked invalid), N·m/kg",
        0.1, 100.0)
    stale_timeout_s: float = spec(0.1, "input silent longer than this is stale, s", 0.005, 10.0)
    max_input_age_s: float = spec(
        0.5, "drop samples whose stamp is older than this on arrival, s (0: no check)",
        0.0, 60.0)
    max_stamp_lead_s: float = spec(
        0.1, "drop samples stamped further than this ahead of the receive clock, s", 0.001, 60.0)
    diagnostics_period_s: float = spec(1.0, "period of /diagnostics messages, s", 0.05, 60.0)
    realtime_priority: int = spec(0, "SCHED_FIFO priority of the node's threads (0: normal"
                                  " scheduling; warns without permission)", 0, 98)

    def __post_init__(self) -> None:
        validate_fields(self)
