"""The one topic table of the assistance graph (docs/architecture.md section 3).

Names are relative, so a graph started in a namespace (``ros2 launch ... __ns:=/left_exo``, a
PushRosNamespace) keeps its topics together. Each stream has the QoS its publishers offer and
the QoS the graph's own subscriptions ask for:

* publishers offer reliable delivery, so a recorder or a test that asks for every sample gets it
  (controller/state, a high-rate debug stream, is best effort);
* subscriptions to latest-value streams ask for best effort, so a publisher with
  ``qos_profile_sensor_data`` (as encoder drivers use) is heard as well as a reliable one, and
  keep only the newest sample, so a backlog never turns into latency. ``joint_states`` keeps
  0.5 s at 200 Hz instead: the estimator's window needs every sample, and a descheduled
  estimator catches up on the queue (its estimates keep their input stamps) rather than
  dropping samples and refilling its window for a whole window length;
* the recorder asks for what the publisher offers, with a deep queue (``record_qos``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from exo_msgs.msg import (
    ActuatorState,
    AssistanceCommand,
    CableForceReference,
    ControllerState,
    GaitEvent,
    HipMomentEstimate,
    MotorCommand,
)

RECORD_DEPTH = 100


def qos(depth: int, reliable: bool = True, transient_local: bool = False) -> QoSProfile:
    """A keep-last profile."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if transient_local
        else DurabilityPolicy.VOLATILE,
    )


LATEST_VALUE_QOS = qos(1, reliable=False)


@dataclass(frozen=True)
class Stream:
    """One topic: relative name, message class and QoS."""

    name: str
    message_class: type
    publish_qos: QoSProfile
    subscribe_qos: QoSProfile = field(default_factory=lambda: LATEST_VALUE_QOS)

    @property
    def record_qos(self) -> QoSProfile:
        """What the publisher offers, with a queue deep enough to lose nothing to a slow disk."""
        p = self.publish_qos
        return QoSProfile(history=p.history, depth=max(p.depth, RECORD_DEPTH),
                          reliability=p.reliability, durability=p.durability)

    @property
    def msg_type(self) -> str:
        """The interface name, e.g. ``sensor_msgs/msg/JointState`` (as rosbag2 writes it)."""
        return f"{self.message_class.__module__.split('.')[0]}/msg/{self.message_class.__name__}"


JOINT_STATES = Stream("joint_states", JointState, qos(100),
                      subscribe_qos=qos(100, reliable=False))
GAIT_EVENTS = Stream("gait_events", GaitEvent, qos(20))
HIP_MOMENT_ESTIMATE = Stream("hip_moment/estimate", HipMomentEstimate, qos(100))
ASSISTANCE_COMMAND = Stream("assistance/command", AssistanceCommand, qos(10))
ASSISTANCE_ENABLE = Stream("assistance/enable", Bool,
                           qos(1, transient_local=True),
                           subscribe_qos=qos(1, transient_local=True))
FORCE_REFERENCE = Stream("actuator/force_reference", CableForceReference,
                         qos(10))
MOTOR_COMMAND = Stream("actuator/motor_command", MotorCommand, qos(10))
ACTUATOR_STATE = Stream("actuator/state", ActuatorState, qos(10))
CONTROLLER_STATE = Stream("controller/state", ControllerState,
                          qos(10, reliable=False))
DIAGNOSTICS = Stream("diagnostics", DiagnosticArray, qos(10))

STREAMS: dict[str, Stream] = {s.name: s for s in (
    JOINT_STATES, GAIT_EVENTS, HIP_MOMENT_ESTIMATE, ASSISTANCE_COMMAND, ASSISTANCE_ENABLE,
    FORCE_REFERENCE, MOTOR_COMMAND, ACTUATOR_STATE, CONTROLLER_STATE, DIAGNOSTICS)}


def publisher(node: Node, stream: Stream):
    """A publisher on ``stream`` (relative name, the table's QoS)."""
    return node.create_publisher(stream.message_class, stream.name, stream.publish_qos)


def subscription(node: Node, stream: Stream, callback: Callable, **kwargs):
    """A subscription to ``stream`` with the table's subscription QoS."""
    return node.create_subscription(stream.message_class, stream.name, callback,
                                    stream.subscribe_qos, **kwargs)


def stamp_s(stamp) -> float:
    """builtin_interfaces/Time as float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9
