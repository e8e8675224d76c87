"""``trial_replay``: publish a K2MUSE trial as joint states and gait events at its capture rate.

The stand-in for ``ros2 bag play`` where rosbag2 is missing: reads a processed trial HDF5 file or
a rosbag2 bag (:mod:`exo_control.trial_source`), and publishes ``sensor_msgs/JointState`` on
``/joint_states`` (position = hip flexion in rad, velocity in rad/s, effort = measured hip moment
in N·m/kg, extension +) and ``exo_msgs/GaitEvent`` on ``/gait_events``. Stamps are the scheduled
play times on the ROS clock, so they keep the capture spacing (divided by ``rate_scale``) whatever
the timer jitter. Without ``loop`` the node exits with status 0 after the last sample.
"""

from __future__ import annotations

import sys

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from k2muse_inference.node_runner import request_realtime_priority
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import JointState

from exo_msgs.msg import GaitEvent

from .common_node import run_node
from .replay import ReplayCursor
from .trial_source import DEFAULT_JOINT_NAMES, ReplayTrial, TrialSourceError, load_trial

JOINT_STATES_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                              history=HistoryPolicy.KEEP_LAST)
GAIT_EVENTS_QOS = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE,
                             history=HistoryPolicy.KEEP_LAST)
DIAGNOSTICS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             history=HistoryPolicy.KEEP_LAST)
TICKS_PER_SAMPLE = 4
MIN_TIMER_PERIOD_S = 0.001
MAX_TIMER_PERIOD_S = 0.02
DRAIN_S = 0.5  # after the last sample, keep the node up so reliable readers get everything


class TrialReplayNode(Node):
    """Publishes one trial; ``finished`` turns true after a non-looping replay's last sample."""

    def __init__(self) -> None:
        super().__init__("trial_replay")
        self.declare_parameter("trial_file", "", ParameterDescriptor(
            description="processed trial .h5 file, or a rosbag2 bag folder / .mcap file",
            read_only=True))
        self.declare_parameter("rate_scale", 1.0, ParameterDescriptor(
            description="playback speed relative to the capture rate (2.0 = twice as fast)",
            read_only=True,
            floating_point_range=[FloatingPointRange(from_value=0.01, to_value=100.0)]))
        self.declare_parameter("loop", False, ParameterDescriptor(
            description="start over after the last sample instead of exiting", read_only=True))
        self.declare_parameter("start_offset_s", 0.0, ParameterDescriptor(
            description="skip this much of the trial (trial seconds) before playing",
            read_only=True,
            floating_point_range=[FloatingPointRange(from_value=0.0, to_value=1.0e6)]))
        self.declare_parameter("joint_names", list(DEFAULT_JOINT_NAMES), ParameterDescriptor(
            description="JointState names of the left and right hip joints", read_only=True))
        self.declare_parameter("wait_for_subscribers", 0, ParameterDescriptor(
            description="hold playback until /joint_states has this many subscribers",
            read_only=True, integer_range=[IntegerRange(from_value=0, to_value=64, step=1)]))
        self.declare_parameter("subscriber_wait_s", 30.0, ParameterDescriptor(
            description="longest hold for subscribers, s; playback starts anyway afterwards",
            read_only=True,
            floating_point_range=[FloatingPointRange(from_value=0.0, to_value=3600.0)]))
        self.declare_parameter("realtime_priority", 0, ParameterDescriptor(
            description="SCHED_FIFO priority (0: normal scheduling); the replay stands in for"
                        " an encoder driver, which samples on time on the exo",
            read_only=True, integer_range=[IntegerRange(from_value=0, to_value=98, step=1)]))
        request_realtime_priority(self, self.get_parameter("realtime_priority").value)

        trial_file = self.get_parameter("trial_file").value
        if not trial_file:
            raise TrialSourceError("parameter trial_file is empty; pass -p trial_file:=<path>")
        self.joint_names = list(self.get_parameter("joint_names").value)
        if len(self.joint_names) != 2 or len(set(self.joint_names)) != 2:
            raise TrialSourceError(f"joint_names must name two joints (left, right), got "
                                   f"{self.joint_names}")
        self.trial: ReplayTrial = load_trial(trial_file, self.joint_names)
        try:
            self.cursor = ReplayCursor(
                self.trial.time_s, self.trial.event_time_s,
                rate_scale=self.get_parameter("rate_scale").value,
                loop=self.get_parameter("loop").value,
                start_offset_s=self.get_parameter("start_offset_s").value)
        except ValueError as exc:
            raise TrialSourceError(f"{trial_file}: {exc}") from None
        self.wait_for_subscribers = self.get_parameter("wait_for_subscribers").value
        self.subscriber_deadline = self.get_clock().now() + Duration(
            seconds=self.get_parameter("subscriber_wait_s").value)

        self.joint_pub = self.create_publisher(JointState, "/joint_states", JOINT_STATES_QOS)
        self.event_pub = self.create_publisher(GaitEvent, "/gait_events", GAIT_EVENTS_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", DIAGNOSTICS_QOS)
        self.start_time: Time | None = None
        self.finished_at: Time | None = None
        self.samples_published = 0
        self.events_published = 0
        # Ticks run at TICKS_PER_SAMPLE times the play rate, so a sample leaves at most a
        # quarter period after its stamp (a tick at the sample rate would lag up to a period).
        period = self.cursor.sample_period_s / self.cursor.rate_scale / TICKS_PER_SAMPLE
        self.timer = self.create_timer(min(max(period, MIN_TIMER_PERIOD_S), MAX_TIMER_PERIOD_S),
                                       self._tick)
        self.diag_timer = self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"replaying {trial_file}: {self.trial.time_s.size} samples at "
            f"{self.trial.sample_rate_hz:.1f} Hz, {self.trial.event_time_s.size} gait events, "
            f"rate_scale {self.cursor.rate_scale}, loop {self.cursor.loop}")

    @property
    def finished(self) -> bool:
        """True once the last sample is out and the drain time has passed."""
        return self.finished_at is not None and (
            self.get_clock().now() - self.finished_at).nanoseconds > DRAIN_S * 1e9

    def _ready_to_start(self) -> bool:
        if self.joint_pub.get_subscription_count() >= self.wait_for_subscribers:
            return True
        if self.get_clock().now() > self.subscriber_deadline:
            self.get_logger().warning(
                f"only {self.joint_pub.get_subscription_count()} of "
                f"{self.wait_for_subscribers} /joint_states subscribers after the wait; "
                "starting anyway")
            return True
        return False

    def _tick(self) -> None:
        now = self.get_clock().now()
        if self.start_time is None:
            if not self._ready_to_start():
                return
            self.start_time = now
        elapsed_s = (now - self.start_time).nanoseconds * 1e-9
        for item in self.cursor.due_samples(elapsed_s):
            self.joint_pub.publish(self._joint_state(item.index, item.play_time_s))
            self.samples_published += 1
        for item in self.cursor.due_events(elapsed_s):
            event = GaitEvent()
            event.header.stamp = self._stamp(item.play_time_s)
            event.side = int(self.trial.event_side[item.index])
            event.kind = int(self.trial.event_kind[item.index])
            self.event_pub.publish(event)
            self.events_published += 1
        if self.cursor.finished and self.finished_at is None:
            self.finished_at = now
            self.get_logger().info(f"replay finished: {self.samples_published} joint states, "
                                   f"{self.events_published} gait events")

    def _stamp(self, play_time_s: float):
        return (self.start_time + Duration(nanoseconds=round(play_time_s * 1e9))).to_msg()

    def _joint_state(self, index: int, play_time_s: float) -> JointState:
        msg = JointState()
        msg.header.stamp = self._stamp(play_time_s)
        msg.name = self.joint_names
        msg.position = [float(v) for v in self.trial.hip_angle_rad[index]]
        msg.velocity = [float(v) for v in self.trial.hip_velocity_rad_s[index]]
        if self.trial.hip_moment_nm_per_kg is not None:
            msg.effort = [float(v) for v in self.trial.hip_moment_nm_per_kg[index]]
        return msg

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name="trial_replay", hardware_id=self.trial.source)
        if self.start_time is None:
            status.level, status.message = DiagnosticStatus.WARN, "waiting for subscribers"
        elif self.finished_at is not None:
            status.level, status.message = DiagnosticStatus.OK, "finished"
        else:
            status.level, status.message = DiagnosticStatus.OK, "playing"
        status.values = [KeyValue(key="samples_published", value=str(self.samples_published)),
                         KeyValue(key="events_published", value=str(self.events_published))]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    """Console entry point ``trial_replay``: ends once the trial is played (unless it loops)."""
    return run_node(TrialReplayNode, args, user_errors=(TrialSourceError,),
                    until=lambda node: node.finished)


if __name__ == "__main__":
    sys.exit(main())
