"""config/estimator.yaml documents every node parameter with its real default, and loads."""

import dataclasses
from pathlib import Path

import pytest
import yaml
from exo_common.params import config_from_mapping, field_specs
from k2muse_inference.estimator_config import EstimatorNodeConfig

CONFIG = Path(__file__).resolve().parents[1] / "config" / "estimator.yaml"
NODE_NAME = "hip_moment_estimator"


def shipped_values():
    return yaml.safe_load(CONFIG.read_text())[NODE_NAME]["ros__parameters"]


def test_config_lists_the_declared_parameters_with_their_defaults():
    values = shipped_values()
    defaults = dataclasses.asdict(EstimatorNodeConfig())
    unset = {name for name, default in defaults.items() if default == []}
    assert unset == {"expected_inputs", "mode_keys"}  # documented as comments: unset arrays
    assert set(values) == set(field_specs(EstimatorNodeConfig)) - unset
    for name, value in values.items():
        assert value == defaults[name], name
        assert type(value) is type(defaults[name]), name


def test_config_loads_as_the_node_configuration():
    assert config_from_mapping(EstimatorNodeConfig, shipped_values()) == EstimatorNodeConfig()


def test_absurd_value_is_refused_with_its_name():
    with pytest.raises(ValueError, match="max_gap_s"):
        config_from_mapping(EstimatorNodeConfig, {**shipped_values(), "max_gap_s": 60.0})
