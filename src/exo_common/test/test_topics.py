"""The topic table: relative names, resolvable types, QoS that the graph's ends agree on."""

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import (  # noqa: E402
    DurabilityPolicy,
    QoSCompatibility,
    qos_check_compatible,
    qos_profile_sensor_data,
)

from exo_common import topics  # noqa: E402


def test_every_name_is_relative_and_every_type_resolves():
    assert len(topics.STREAMS) == 10
    for name, stream in topics.STREAMS.items():
        assert name == stream.name and not name.startswith("/") and not name.endswith("/")
        assert stream.message_class.__name__ == stream.msg_type.rsplit("/", 1)[1]
    assert topics.JOINT_STATES.msg_type == "sensor_msgs/msg/JointState"
    assert topics.GAIT_EVENTS.msg_type == "exo_msgs/msg/GaitEvent"


def test_latest_value_subscriptions_hear_best_effort_and_reliable_publishers():
    for stream in topics.STREAMS.values():
        if stream.subscribe_qos.durability == DurabilityPolicy.TRANSIENT_LOCAL:
            continue  # assistance/enable: transient local on purpose, late joiners get the last
        for publisher in (stream.publish_qos, qos_profile_sensor_data):
            verdict, reason = qos_check_compatible(publisher, stream.subscribe_qos)
            # WARNING only means "system default" policies that rmw resolves compatibly.
            assert verdict != QoSCompatibility.ERROR, (stream.name, reason)


def test_enable_requests_reach_a_late_subscriber_and_the_recorder_hears_every_publisher():
    enable = topics.ASSISTANCE_ENABLE
    assert qos_check_compatible(enable.publish_qos, enable.subscribe_qos)[0] \
        != QoSCompatibility.ERROR
    assert enable.publish_qos.durability == enable.subscribe_qos.durability \
        == DurabilityPolicy.TRANSIENT_LOCAL
    for stream in topics.STREAMS.values():
        assert stream.record_qos.depth >= topics.RECORD_DEPTH
        verdict, reason = qos_check_compatible(stream.publish_qos, stream.record_qos)
        assert verdict != QoSCompatibility.ERROR, (stream.name, reason)


def test_a_namespace_moves_every_topic():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("probe", namespace="/left_exo", context=context)
        publisher = topics.publisher(node, topics.HIP_MOMENT_ESTIMATE)
        subscription = topics.subscription(node, topics.JOINT_STATES, lambda msg: None)
        assert publisher.topic_name == "/left_exo/hip_moment/estimate"
        assert subscription.topic_name == "/left_exo/joint_states"
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
