"""End-to-end latency: replayed joint state -> estimate -> assistance command -> motor command.

Starts the whole graph as processes (trial_replay at the trial's 100 Hz capture rate,
hip_moment_estimator on ONNX Runtime, assistance_profile, admittance_controller,
simulated_actuator, with their parameter files from exo_control.graph) and listens from this
process. For every joint state (stamp S = its scheduled publish time on the ROS clock, which is
the system clock):

- joint state: its arrival here, R_j - S (replay timer lateness plus one DDS hop);
- estimate: arrival of the estimate stamped S (the estimator copies the input stamp), R_e - S;
- assistance: the first assistance command to arrive after that estimate, R_a - S;
- motor command: the first motor command to arrive after that assistance command, R_m - S.

R_m - S is the end-to-end figure: the first motor command (published by the actuator at 200 Hz
for monitoring; its fast loop acts on the reference within 1 ms) that can carry the sample's
information. Periodic nodes add up to one period each (assistance, controller and actuator state
5 ms each at 200 Hz). Where the assistance node receives an estimate after this listener does,
the chain can credit one assistance tick too early, so the figure may read up to 5 ms low.

    .venv/bin/python bench/bench_end_to_end.py                 # 30 s of replay
    .venv/bin/python bench/bench_end_to_end.py --duration-s 60 --json results/e2e.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def make_inputs(folder: Path, duration_s: float) -> tuple[Path, Path, float]:
    """A generated, processed trial and a model folder of the default TCN size."""
    from k2muse_dataset.process import process_release
    from k2muse_dataset.synth import generate_release
    from k2muse_dataset.trial_h5 import iter_trial_files, read_trial_h5
    from k2muse_learning.tcn_demo import write_demo_model_folder
    from k2muse_model.tcn import TCNConfig

    release = generate_release(folder / "release", participants=("P01",), mode_keys=("LG_0",),
                               trials=1, duration_s=duration_s, seed=0)
    process_release(release, folder / "processed", jobs=2)
    trial = next(iter(iter_trial_files(folder / "processed" / "trials")))
    # Random weights (latency does not depend on them), the default architecture's size.
    model = write_demo_model_folder(folder / "model", config=TCNConfig(dropout=0.0))
    return trial, model, read_trial_h5(trial, load_emg=False, load_aus=False).body_mass_kg


class Listener:
    """Arrival times (system clock, ns) of the graph's messages."""

    def __init__(self, node):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState

        from exo_msgs.msg import AssistanceCommand, HipMomentEstimate, MotorCommand

        reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.joint: dict[int, int] = {}
        self.estimate: dict[int, int] = {}
        self.assistance: list[int] = []
        self.motor: list[int] = []

        def stamp_ns(msg) -> int:
            return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

        node.create_subscription(JointState, "/joint_states", lambda m: self.joint.setdefault(
            stamp_ns(m), time.time_ns()), reliable)
        node.create_subscription(HipMomentEstimate, "/hip_moment/estimate",
                                 lambda m: self.estimate.setdefault(stamp_ns(m), time.time_ns()),
                                 reliable)
        node.create_subscription(AssistanceCommand, "/assistance/command",
                                 lambda m: self.assistance.append(time.time_ns()), reliable)
        node.create_subscription(MotorCommand, "/actuator/motor_command",
                                 lambda m: self.motor.append(time.time_ns()), reliable)

    def latencies_ms(self) -> dict[str, np.ndarray]:
        """Per joint-state stamp that produced an estimate: latency of each hop, ms."""
        stamps = np.array(sorted(s for s in self.estimate if s in self.joint), dtype=np.int64)
        estimate = np.array([self.estimate[s] for s in stamps], dtype=np.int64)
        assistance = np.array(self.assistance, dtype=np.int64)
        motor = np.array(self.motor, dtype=np.int64)
        a_index = np.searchsorted(assistance, estimate, side="right")
        keep = a_index < assistance.size
        a_time = assistance[a_index[keep]]
        m_index = np.searchsorted(motor, a_time, side="right")
        keep_m = m_index < motor.size
        s = stamps[keep][keep_m]
        return {
            "joint state arrival": (np.array([self.joint[x] for x in stamps]) - stamps) / 1e6,
            "estimate": (estimate - stamps) / 1e6,
            "assistance command": (a_time - stamps[keep]) / 1e6,
            "motor command (end to end)": (motor[m_index[keep_m]] - s) / 1e6,
        }


def main() -> None:
    """Run the graph once and print latency percentiles per hop."""
    import rclpy
    from exo_control.graph import CHAIN, TRIAL_REPLAY
    from exo_control.graph_processes import (
        ProcessGroup,
        graph_parameters,
        node_arguments,
        wait_for_controller,
    )
    from rclpy.executors import SingleThreadedExecutor

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=30.0, help="replayed trial length")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp:
        folder = Path(tmp)
        trial, model, body_mass = make_inputs(folder, max(args.duration_s, 5.0))
        group = ProcessGroup(folder / "logs")
        try:
            chain = [node.executable for node in CHAIN]
            for node, params in graph_parameters(model, body_mass).items():
                group.start(node.executable, node_arguments(node, params))
            wait_for_controller(group.env, 90.0, lambda: group.check_alive(chain))
            context = rclpy.Context()
            rclpy.init(context=context)
            node = rclpy.create_node("bench_end_to_end", context=context)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            listener = Listener(node)
            replay = group.start(TRIAL_REPLAY.executable, node_arguments(
                TRIAL_REPLAY, {"trial_file": str(trial), "wait_for_subscribers": 2}))
            while replay.poll() is None:
                executor.spin_once(timeout_sec=0.01)
                group.check_alive(chain)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.01)
            executor.shutdown()
            node.destroy_node()
            rclpy.shutdown(context=context)
        finally:
            group.stop_all()

    hops = listener.latencies_ms()
    results = {}
    print(f"end-to-end latency, {len(listener.joint)} joint states at 100 Hz, "
          f"{len(listener.estimate)} estimates (ms from the joint state's stamp):")
    print(f"  {'hop':<28}{'n':>6}{'p50':>9}{'p99':>9}{'max':>9}")
    for hop, values in hops.items():
        figures = {"n": int(values.size), "p50_ms": float(np.percentile(values, 50)),
                   "p99_ms": float(np.percentile(values, 99)), "max_ms": float(values.max())}
        results[hop] = figures
        print(f"  {hop:<28}{figures['n']:>6}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
              f"{figures['max_ms']:>9.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
