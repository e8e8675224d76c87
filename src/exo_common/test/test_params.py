"""Configuration dataclasses as typed ROS parameters: descriptors, ranges, live updates."""

import dataclasses
from dataclasses import dataclass

import pytest
from exo_common.params import (
    ConfigError,
    config_from_mapping,
    field_specs,
    spec,
    validate_fields,
)

rclpy = pytest.importorskip("rclpy")
from exo_common.node_params import declare_config, watch_live_parameters  # noqa: E402
from rcl_interfaces.msg import ParameterType  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402


@dataclass(frozen=True)
class PumpConfig:
    """A configuration with every kind of field the nodes use."""

    rate_hz: int = spec(100, "loop rate, Hz", 1, 1000)
    gain: float = spec(1.0, "output gain", 0.0, 10.0, live=True)
    max_gain: float = spec(5.0, "upper bound for gain", 0.0, 10.0, live=True)
    mode: str = spec("slow", "pump mode", choices=("slow", "fast"))
    enabled: bool = spec(True, "start enabled")
    names: list[str] = spec(("left", "right"), "joint names")
    pinned: list[str] = spec((), "optional list; unset means any")

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.gain > self.max_gain:
            raise ValueError(f"gain={self.gain} exceeds max_gain={self.max_gain}")


@pytest.fixture
def make_node():
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes = []

    def make(**overrides):
        node = rclpy.create_node("pump", context=context, parameter_overrides=[
            Parameter(name, value=value) for name, value in overrides.items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown(context=context)


def test_pure_validation_names_the_field():
    assert PumpConfig().names == ["left", "right"]
    with pytest.raises(ValueError, match="rate_hz"):
        PumpConfig(rate_hz=0)
    with pytest.raises(ValueError, match="mode"):
        PumpConfig(mode="turbo")
    with pytest.raises(ValueError, match="gain"):
        PumpConfig(gain=float("nan"))
    with pytest.raises(ValueError, match="unknown PumpConfig parameter"):
        config_from_mapping(PumpConfig, {"rate": 5})
    assert config_from_mapping(PumpConfig, {"gain": 2}).gain == 2.0  # YAML's 2 for 2.0


def test_each_field_is_a_typed_parameter_with_its_range(make_node):
    node = make_node()
    config = declare_config(node, PumpConfig)
    assert config == PumpConfig()
    rate, gain, mode, names, pinned = node.describe_parameters(
        ["rate_hz", "gain", "mode", "names", "pinned"])
    assert rate.type == ParameterType.PARAMETER_INTEGER and rate.read_only
    assert (rate.integer_range[0].from_value, rate.integer_range[0].to_value) == (1, 1000)
    assert gain.type == ParameterType.PARAMETER_DOUBLE and not gain.read_only
    assert (gain.floating_point_range[0].from_value,
            gain.floating_point_range[0].to_value) == (0.0, 10.0)
    assert gain.description == field_specs(PumpConfig)["gain"][1].description
    assert mode.additional_constraints == "one of: slow, fast"
    assert names.type == pinned.type == ParameterType.PARAMETER_STRING_ARRAY


def test_startup_values_are_validated_with_the_name(make_node):
    config = declare_config(make_node(rate_hz=200, pinned=["left"]), PumpConfig)
    assert (config.rate_hz, config.pinned) == (200, ["left"])
    with pytest.raises(ConfigError, match="rate_hz"):
        declare_config(make_node(rate_hz=5000), PumpConfig)
    with pytest.raises(ConfigError, match="mode"):
        declare_config(make_node(mode="turbo"), PumpConfig)
    with pytest.raises(ConfigError, match="gain=6.0 exceeds max_gain"):
        declare_config(make_node(gain=6.0), PumpConfig)


def test_live_update_applies_or_is_rejected_with_the_name(make_node):
    node = make_node()
    state = {"config": declare_config(node, PumpConfig)}
    rejected = []
    watch_live_parameters(node, lambda: state["config"],
                          lambda config: state.update(config=config), rejected.append)

    result, = node.set_parameters([Parameter("gain", value=2.5)])
    assert result.successful and state["config"].gain == 2.5

    result, = node.set_parameters([Parameter("gain", value=50.0)])  # beyond the range
    assert not result.successful and state["config"].gain == 2.5
    assert rejected and "gain" in rejected[-1]

    result, = node.set_parameters([Parameter("gain", value=7.0)])  # beyond max_gain
    assert not result.successful and "max_gain" in result.reason
    assert state["config"] == dataclasses.replace(PumpConfig(), gain=2.5)

    result, = node.set_parameters([Parameter("rate_hz", value=50)])  # not live
    assert not result.successful and state["config"].rate_hz == 100
