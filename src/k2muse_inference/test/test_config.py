"""config/estimator.yaml documents every node parameter with its real default."""

from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")
from k2muse_inference.estimator_node import NODE_NAME, PARAMETERS  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "estimator.yaml"


def test_config_lists_the_declared_parameters_with_their_defaults():
    values = yaml.safe_load(CONFIG.read_text())[NODE_NAME]["ros__parameters"]
    unset = {name for name, (default, _) in PARAMETERS.items() if isinstance(default,
                                                                              Parameter.Type)}
    assert unset == {"expected_inputs", "mode_keys"}  # documented as comments: unset arrays
    assert set(values) == set(PARAMETERS) - unset
    for name, value in values.items():
        assert value == PARAMETERS[name][0], name
        assert type(value) is type(PARAMETERS[name][0]), name
