"""``trial_replay``: publish a K2MUSE trial as joint states and gait events at its capture rate.

The stand-in for ``ros2 bag play`` where rosbag2 is missing: reads a processed trial HDF5 file or
a rosbag2 bag (:mod:`exo_control.trial_source`), and publishes ``sensor_msgs/JointState`` on
``joint_states`` (position = hip flexion in rad, velocity in rad/s, effort = measured hip moment
in N·m/kg, extension +) and ``exo_msgs/GaitEvent`` on ``gait_events``. Stamps are the scheduled
play times on the ROS clock, so they keep the capture spacing (divided by ``rate_scale``) whatever
the timer jitter. Without ``loop`` the node exits with status 0 after the last sample.
"""

from __future__ import annotations

import sys

from exo_common.diagnostics import OK, WARN, Diagnostics
from exo_common.node_params import declare_config
from exo_common.node_runner import request_realtime_priority, run_node
from exo_common.topics import GAIT_EVENTS, JOINT_STATES, publisher
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import JointState

from exo_msgs.msg import GaitEvent

from .replay import ReplayCursor, ReplayNodeConfig
from .trial_source import ReplayTrial, TrialSourceError, load_trial

TICKS_PER_SAMPLE = 4
MIN_TIMER_PERIOD_S = 0.001
MAX_TIMER_PERIOD_S = 0.02
DRAIN_S = 0.5  # after the last sample, keep the node up so reliable readers get everything


class TrialReplayNode(Node):
    """Publishes one trial; ``finished`` turns true after a non-looping replay's last sample."""

    def __init__(self) -> None:
        super().__init__("trial_replay")
        self.config: ReplayNodeConfig = declare_config(self, ReplayNodeConfig)
        request_realtime_priority(self, self.config.realtime_priority)
        trial_file = self.config.trial_file
        if not trial_file:
            raise TrialSourceError("parameter trial_file is empty; pass -p trial_file:=<path>")
        self.joint_names = list(self.config.joint_names)
        if len(self.joint_names) != 2 or len(set(self.joint_names)) != 2:
            raise TrialSourceError(f"joint_names must name two joints (left, right), got "
                                   f"{self.joint_names}")
        self.trial: ReplayTrial = load_trial(trial_file, self.joint_names)
        try:
            self.cursor = ReplayCursor(
                self.trial.time_s, self.trial.event_time_s, rate_scale=self.config.rate_scale,
                loop=self.config.loop, start_offset_s=self.config.start_offset_s)
        except ValueError as exc:
            raise TrialSourceError(f"{trial_file}: {exc}") from None
        self.wait_for_subscribers = self.config.wait_for_subscribers
        self.subscriber_deadline = self.get_clock().now() + Duration(
            seconds=self.config.subscriber_wait_s)

        self.joint_pub = publisher(self, JOINT_STATES)
        self.event_pub = publisher(self, GAIT_EVENTS)
        self.diagnostics = Diagnostics(self, "exo_control", "trial_replay")
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
        if self.start_time is None:
            level, message = WARN, "waiting for subscribers"
        else:
            level, message = OK, "finished" if self.finished_at is not None else "playing"
        self.diagnostics.publish(level, message, {"samples_published": self.samples_published,
                                                  "events_published": self.events_published},
                                 hardware_id=self.trial.source)


def main(args: list[str] | None = None) -> int:
    """Console entry point ``trial_replay``: ends once the trial is played (unless it loops)."""
    return run_node(TrialReplayNode, args, user_errors=(TrialSourceError,),
                    until=lambda node: node.finished)


if __name__ == "__main__":
    sys.exit(main())
