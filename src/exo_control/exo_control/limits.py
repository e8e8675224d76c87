"""Bounding blocks shared by the assistance profile and the controller (no ROS).

Every path from an estimate to a motor command runs through these: a saturation, a slew-rate
limit and a smooth fade whose time to zero is exact, so the worst-case time to unload the cable
can be stated from the parameters alone.
"""

from __future__ import annotations

import math


def clamp(value: float, low: float, high: float) -> float:
    """Saturate ``value`` to [low, high]; NaN maps to ``low`` so a bad number never passes."""
    if not math.isfinite(value):
        return low if math.isnan(value) else (high if value > 0 else low)
    return min(max(value, low), high)


def slew(previous: float, target: float, max_step: float) -> float:
    """Move from ``previous`` towards ``target`` by at most ``max_step``."""
    return previous + clamp(target - previous, -max_step, max_step)


def smoothstep(phase: float) -> float:
    """C1-continuous 0..1 ramp (zero slope at both ends), so a fade never jerks the cable."""
    p = clamp(phase, 0.0, 1.0)
    return p * p * (3.0 - 2.0 * p)


class SmoothFade:
    """A 0..1 scale that follows a boolean target with separate rise and fall times.

    The internal phase moves linearly (1/rise_s or 1/fall_s per second) and the output is its
    smoothstep, so going from fully on to zero takes exactly ``fall_s`` whatever the history, and
    reversing mid-fade continues from the current value without a jump.
    """

    def __init__(self, rise_s: float, fall_s: float, on: bool = False) -> None:
        if not (rise_s > 0.0 and fall_s > 0.0):
            raise ValueError(f"fade times must be > 0 s, got rise {rise_s}, fall {fall_s}")
        self.rise_s = rise_s
        self.fall_s = fall_s
        self.phase = 1.0 if on else 0.0

    @property
    def value(self) -> float:
        """Current scale, 0..1."""
        return smoothstep(self.phase)

    def step(self, target_on: bool, dt: float) -> float:
        """Advance by ``dt`` seconds towards on (1) or off (0); return the new scale."""
        dt = max(dt, 0.0)
        if target_on:
            self.phase = min(1.0, self.phase + dt / self.rise_s)
        else:
            self.phase = max(0.0, self.phase - dt / self.fall_s)
        return self.value

    def reset(self, on: bool = False) -> None:
        """Jump to fully on or off (start-up only)."""
        self.phase = 1.0 if on else 0.0
