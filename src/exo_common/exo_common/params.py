"""Typed, range-checked configuration fields shared by the pure modules and the nodes (no ROS).

Each configuration is a frozen dataclass whose fields carry a description, a unit-bearing name
and an allowed range (or a set of choices) in their metadata. The same metadata validates a
configuration in pure code (``validate_fields``) and becomes the ROS ParameterDescriptor in the
node layer (:mod:`exo_common.node_params`), so an absurd value is rejected identically whether it
comes from a unit test, a YAML file, the command line or a live ``set_parameters`` call. An empty
list default is a string array left unset (the node reads it back as the empty list).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A node parameter has an absurd value; the message names it."""


@dataclass(frozen=True)
class FieldSpec:
    """What a configuration field means and which values are sane."""

    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    live: bool = False  # may change while the node runs (others are read-only parameters)


def spec(default: Any, description: str, low: float | None = None, high: float | None = None,
         *, choices: tuple[str, ...] | None = None, live: bool = False) -> Any:
    """Declare a dataclass field with its default, description and allowed range or choices."""
    meta = {"spec": FieldSpec(description, low, high, choices, live)}
    if isinstance(default, list | tuple):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def field_specs(config_type: type) -> dict[str, tuple[dataclasses.Field, FieldSpec]]:
    """Map each field name of a configuration dataclass to (field, spec)."""
    return {f.name: (f, f.metadata["spec"]) for f in dataclasses.fields(config_type)
            if "spec" in f.metadata}


def field_default(f: dataclasses.Field) -> Any:
    """Default value of a dataclass field, whether given directly or by a factory."""
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def validate_fields(config: Any) -> None:
    """Raise ValueError naming the first field that is non-finite, out of range or no choice."""
    for name, (_, fs) in field_specs(type(config)).items():
        value = getattr(config, name)
        if isinstance(value, bool):
            continue
        if fs.choices is not None:
            if value not in fs.choices:
                raise ValueError(f"{name}={value!r}: must be one of {', '.join(fs.choices)}")
            continue
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError(f"{name}={value!r}: must be a finite number")
            if (fs.low is not None and value < fs.low) or (fs.high is not None and value > fs.high):
                raise ValueError(f"{name}={value!r}: out of range [{fs.low}, {fs.high}]")


def config_from_mapping(config_type: type, values: dict[str, Any]) -> Any:
    """Build and validate a configuration from a name -> value mapping; unknown names raise."""
    known = field_specs(config_type)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown {config_type.__name__} parameter(s): {', '.join(unknown)}")
    converted = {}
    for name, value in values.items():
        default = field_default(known[name][0])
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # YAML and the command line write 200 for 200.0
        converted[name] = value
    return config_type(**converted)
