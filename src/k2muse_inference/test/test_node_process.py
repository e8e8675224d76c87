"""hip_moment_estimator as a process over real DDS: offline ONNX parity, no losses, faults."""

import math
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from exo_msgs.msg import HipMomentEstimate  # noqa: E402

WINDOW = 100  # the demo model folder's window at 100 Hz
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class Harness:
    """Publishes joint states from the test node and collects what the estimator sends back."""

    def __init__(self, node, spin_until, process):
        self.node, self.spin_until, self.process = node, spin_until, process
        self.estimates: list[HipMomentEstimate] = []
        self.diagnostics: list[DiagnosticStatus] = []
        self.publisher = node.create_publisher(JointState, "/joint_states", RELIABLE)
        # Deep enough that a slow test process never drops what the node sent.
        node.create_subscription(HipMomentEstimate, "/hip_moment/estimate",
                                 self.estimates.append,
                                 QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE))
        node.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda m: self.diagnostics.extend(m.status), RELIABLE)
        connected = spin_until(node, lambda: self.publisher.get_subscription_count() > 0
                               and node.count_publishers("/hip_moment/estimate") > 0
                               and bool(self.diagnostics), 30.0)
        assert connected, f"estimator did not come up:\n{process.output()}"

    def play(self, angles, rate_hz, faults=None, shifts=None):
        """Publish (N, 2) angles at rate_hz, stamped now + i/rate; returns the stamps (ns).

        ``shifts`` (index -> ns) moves single stamps, e.g. into the future.
        """
        faults, shifts = faults or {}, shifts or {}
        start_wall = time.perf_counter()
        start_ns = self.node.get_clock().now().nanoseconds
        stamps = []
        self.max_lateness_s = 0.0
        for i, pair in enumerate(angles):
            due = start_wall + i / rate_hz
            while (now := time.perf_counter()) < due:
                self.node.test_executor.spin_once(timeout_sec=min(due - now, 0.002))
            self.max_lateness_s = max(self.max_lateness_s, now - due)
            stamp = start_ns + round(i * 1e9 / rate_hz) + shifts.get(i, 0)
            msg = JointState(name=["left_hip_joint", "right_hip_joint"],
                             position=[float(a) for a in faults.get(i, pair)])
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            self.publisher.publish(msg)
            stamps.append(stamp)
        return stamps

    def wait_for(self, count, timeout_s=10.0):
        self.spin_until(self.node, lambda: len(self.estimates) >= count, timeout_s)
        self.spin_until(self.node, lambda: False, 0.3)  # anything beyond count would show here

    def node_received(self, sent, timeout_s=5.0):
        """Joint states the node reports having received, once its count reaches ``sent`` or
        stops rising (messages a descheduled node never took off the queue are not counted)."""
        def count():
            values = [{kv.key: kv.value for kv in s.values} for s in self.diagnostics]
            return max((int(v.get("joint_states_received", 0)) for v in values), default=0)

        self.spin_until(self.node, lambda: count() >= sent, timeout_s)
        return count()

    def by_stamp(self):
        return {m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec: m
                for m in self.estimates}


CONFIG = Path(__file__).resolve().parents[1] / "config" / "estimator.yaml"


def start_estimator(start_node, model_folder, *params):
    args = ["--ros-args", "--params-file", str(CONFIG),
            "-p", f"model_folder:={model_folder}", "-p", "backend:=onnxruntime"]
    for param in params:
        args += ["-p", param]
    return start_node("hip_moment_estimator", *args)


@pytest.mark.parametrize("rate_hz", [100.0, 200.0])
def test_estimates_match_offline_onnx_and_none_are_lost(
        rate_hz, start_node, ros_node, spin_until, model_folder, trial_hip_angles,
        offline_reference):
    time_s, angles = trial_hip_angles
    step = int(rate_hz // 100)
    played_t = np.arange(0, 300 * step) / rate_hz  # 3 s of the trial
    played = np.stack([np.interp(played_t, time_s, angles[:, s]) for s in (0, 1)], axis=1)
    process = start_estimator(start_node, model_folder, "diagnostics_period_s:=0.2")
    harness = Harness(ros_node, spin_until, process)

    stamps = harness.play(played, rate_hz)
    expected = len(stamps) - step * WINDOW  # every message once its window is full
    harness.wait_for(expected)
    received = harness.by_stamp()
    assert len(harness.estimates) == len(received), "an estimate was published twice"
    assert set(received) <= set(stamps[step * WINDOW:])
    node_received = harness.node_received(len(stamps))
    if node_received == len(stamps):  # the node took every message: it owes every estimate
        assert len(received) == expected, process.output()
    else:
        # Either the test process was descheduled and then sent its backlog in one burst, or
        # the node was descheduled for longer than its joint-state queue lasts (1 s at 100 Hz):
        # the overflow is dropped by design, before the node ever sees it.
        assert len(received) >= 0.5 * expected, (harness.max_lateness_s, node_received,
                                                 process.output())

    # At 200 Hz the window of message j is every other message back from j: two 100 Hz series.
    worst = 0.0
    for phase in range(step):
        series = played[phase::step]
        for side, field in enumerate(("left_moment_nm_per_kg", "right_moment_nm_per_kg")):
            reference = offline_reference(series[:, side])
            rows = [(k, s) for k, s in enumerate(stamps[phase::step][WINDOW:]) if s in received]
            got = [getattr(received[s], field) for _, s in rows]
            wanted = reference[[k for k, _ in rows]]
            worst = max(worst, float(np.max(np.abs(np.array(got) - wanted))))
    assert worst < 1e-4
    sample = harness.estimates[-1]
    assert (sample.left_valid, sample.right_valid) == (True, True)
    assert (sample.backend, sample.ensemble_size, sample.model_id) == (
        "onnxruntime", 3, "demo-random-tcn")
    assert all(0.0 < m.inference_latency_s < 1.0 for m in harness.estimates)


def test_faults_never_publish_nan_and_stale_input_is_diagnosed(
        start_node, ros_node, spin_until, model_folder, trial_hip_angles):
    _, angles = trial_hip_angles
    process = start_estimator(start_node, model_folder, "diagnostics_period_s:=0.2",
                              "stale_timeout_s:=0.1")
    harness = Harness(ros_node, spin_until, process)
    faults = {150: (math.nan, angles[150, 1]), 160: (math.inf, angles[160, 1]),
              170: (angles[170, 0], 9.0)}
    stamps = harness.play(angles[:200], 100.0, faults)
    # Full windows from sample 100; the left leg restarts at 150, the right one at 170, and
    # with neither leg valid nothing is published.
    harness.wait_for(70)
    received = harness.by_stamp()
    assert sorted(received) == stamps[100:170], process.output()
    for stamp in stamps[150:170]:
        msg = received[stamp]
        assert not msg.left_valid and msg.left_moment_nm_per_kg == 0.0 and msg.right_valid
    assert all(math.isfinite(m.left_moment_nm_per_kg) and math.isfinite(m.right_moment_nm_per_kg)
               for m in harness.estimates)

    harness.diagnostics.clear()
    assert spin_until(ros_node, lambda: any(s.level == DiagnosticStatus.ERROR
                                            for s in harness.diagnostics), 5.0)
    status = next(s for s in harness.diagnostics if s.level == DiagnosticStatus.ERROR)
    assert status.message.startswith("stale input: no joint state for")
    values = {kv.key: kv.value for kv in status.values}
    assert values["backend"] == "onnxruntime" and values["ensemble_size"] == "3"
    assert float(values["latency_p99_ms"]) > 0.0
    assert values["left_non_finite_samples"] == "2" and values["right_out_of_range_samples"] == "1"
    count = len(harness.estimates)
    spin_until(ros_node, lambda: False, 0.5)
    assert len(harness.estimates) == count  # stale: nothing more is published


def test_manifest_mismatch_refuses_to_start(start_node, model_folder):
    process = start_estimator(start_node, model_folder, "expected_sample_rate_hz:=200.0")
    assert process.process.wait(timeout=30) == 1
    output = process.output()
    assert "cannot start" in output and "model sample rate 100 Hz" in output
    assert "Traceback" not in output


def test_one_future_stamp_does_not_silence_the_estimator(
        start_node, ros_node, spin_until, model_folder, trial_hip_angles):
    _, angles = trial_hip_angles
    process = start_estimator(start_node, model_folder, "diagnostics_period_s:=0.2")
    harness = Harness(ros_node, spin_until, process)
    hour_ns = 3600 * 1_000_000_000
    stamps = harness.play(angles[:300], 100.0, shifts={150: hour_ns})
    harness.wait_for(len(stamps) - WINDOW - 1)
    received = harness.by_stamp()
    assert stamps[150] not in received  # the future sample is dropped ...
    # ... and the samples after it are estimated again (before the fix: none of them). The
    # best-effort joint-state subscription may drop a few on a loaded machine.
    after = [s for s in stamps[151:] if s in received]
    assert len(after) >= 0.5 * len(stamps[151:]), process.output()
    assert any(s in received for s in stamps[-20:])
    assert all(received[s].left_valid and received[s].right_valid for s in after)

    def counted():
        return any({kv.key: kv.value for kv in status.values}.get("future_stamps_dropped")
                   == "1" for status in harness.diagnostics)

    assert spin_until(ros_node, counted, 5.0), process.output()


def test_jittered_encoder_reads_stream_on_the_model_grid(
        start_node, ros_node, spin_until, model_folder, trial_hip_angles):
    """200 Hz reads with +-1.5 ms stamp jitter, window_end model_grid, the streaming backend:
    one estimate per 10 ms instant, stamped with it, nearly every one a single model step."""
    time_s, angles = trial_hip_angles
    played_t = np.arange(0, 600) / 200.0
    played = np.stack([np.interp(played_t, time_s, angles[:, s]) for s in (0, 1)], axis=1)
    jitter = np.random.default_rng(5).integers(-1_500_000, 1_500_001, len(played))
    process = start_estimator(start_node, model_folder, "window_end:=model_grid",
                              "backend:=onnxruntime_streaming", "diagnostics_period_s:=0.2")
    harness = Harness(ros_node, spin_until, process)
    stamps = harness.play(played, 200.0, shifts=dict(enumerate(jitter.tolist())))
    instants = sorted({s - s % 10_000_000 for s in stamps})
    expected = len(instants) - WINDOW - 1  # the first full window ends 100 periods in
    harness.wait_for(expected)
    received = sorted(harness.by_stamp())
    assert len(received) == len(harness.estimates), "an estimate was published twice"
    assert set(received) <= set(instants), "estimates are stamped with model-grid instants"
    node_received = harness.node_received(len(stamps))
    assert len(received) >= (expected if node_received == len(stamps) else 0.5 * expected), \
        (node_received, process.output())
    assert all(m.backend == "onnxruntime_streaming" for m in harness.estimates)

    def counts():
        values = [{kv.key: kv.value for kv in status.values} for status in harness.diagnostics]
        return [(int(v["model_steps"]), int(v["model_primes"])) for v in values
                if "model_steps" in v and int(v["model_steps"]) + int(v["model_primes"])
                >= len(received)]

    assert spin_until(ros_node, lambda: bool(counts()), 5.0), process.output()
    steps, primes = counts()[-1]
    assert primes <= 4 and steps >= 10 * primes  # primed once per leg, then stepped
