"""Assistance profile: hip-moment estimate -> assistive torque -> desired cable force (no ROS).

Sign conventions (docs/architecture.md section 3): the estimated biological hip moment and the
assistive torque are positive in extension (N·m/kg and N·m). The assistive torque supports the
biological moment, so it has the same sign:

    torque_nm = gain * body_mass_kg * lowpass(delay(moment_nm_per_kg))

A cable can only pull, so each side's cable assists one direction (``direction``): an extension
cable turns the positive part of the torque into tension, ``force_n = max(torque_nm, 0) /
moment_arm_m``; a flexion cable the negative part. The reported torque is the one the limited
force actually delivers (``+force * arm`` for extension, ``-force * arm`` for flexion).

Bounds applied to every output sample, in this order: enable fade x input-validity fade, force
saturation [0, max_force_n], force slew-rate limit (max_force_rate_n_per_s), saturation again.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from exo_common.params import spec, validate_fields
from scipy import signal

from exo_control.limits import SmoothFade, clamp, slew

SIDES = ("left", "right")


class AssistanceState(enum.IntEnum):
    """Enable state machine; values match exo_msgs/AssistanceCommand STATE_*."""

    DISABLED = 0
    FADING_IN = 1
    ENABLED = 2
    FADING_OUT = 3


@dataclass(frozen=True)
class AssistanceConfig:
    """Parameters of the assistance profile; ranges reject physically absurd values."""

    rate_hz: float = spec(200.0, "output rate of the assistance command, Hz", 20.0, 1000.0)
    body_mass_kg: float = spec(75.0, "wearer's body mass, kg", 20.0, 200.0, live=True)
    gain: float = spec(0.2, "fraction of the estimated biological hip moment to assist",
                       0.0, 1.0, live=True)
    delay_s: float = spec(0.0, "deliberate delay applied to the estimate, s", 0.0, 0.5)
    filter_cutoff_hz: float = spec(6.0, "Butterworth low-pass cut-off, Hz", 0.5, 50.0)
    filter_order: int = spec(2, "Butterworth low-pass order", 1, 6)
    moment_arm_m: float = spec(0.1, "cable moment arm about the hip, m", 0.02, 0.3)
    direction: str = spec("extension", "direction the cable assists",
                          choices=("extension", "flexion"))
    side: str = spec("both", "sides that receive assistance", choices=("both", "left", "right"))
    max_force_n: float = spec(200.0, "cable force limit, N", 0.0, 500.0, live=True)
    max_force_rate_n_per_s: float = spec(2000.0, "cable force slew-rate limit, N/s",
                                         1.0, 20000.0, live=True)
    fade_in_s: float = spec(1.0, "enable fade-in time, s", 0.05, 10.0)
    fade_out_s: float = spec(0.5, "disable fade-out time, s", 0.05, 10.0)
    fault_fade_s: float = spec(0.2, "fade-out time after a stale or invalid estimate, s",
                               0.02, 2.0)
    estimate_timeout_s: float = spec(0.1, "an estimate older than this is stale, s", 0.01, 1.0)
    enabled_on_start: bool = spec(False, "request assistance as soon as the node starts")
    realtime_priority: int = spec(0, "SCHED_FIFO priority of the node's threads (0: normal"
                                  " scheduling; warns without permission)", 0, 98)

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.filter_cutoff_hz >= 0.45 * self.rate_hz:
            raise ValueError(
                f"filter_cutoff_hz={self.filter_cutoff_hz} must be below 0.45 * rate_hz"
                f" ({0.45 * self.rate_hz:.1f} Hz)"
            )

    @property
    def delay_samples(self) -> int:
        """Delay in output samples (the estimate is held between its own samples)."""
        return int(round(self.delay_s * self.rate_hz))

    def unload_time_s(self) -> float:
        """Slew-limit lag added to any fade: the longest time to bring max force to zero."""
        return self.max_force_n / self.max_force_rate_n_per_s

    def time_to_zero_after_input_loss_s(self) -> float:
        """Worst case from the last good estimate to zero force (stale detection + fade + slew)."""
        return self.estimate_timeout_s + self.fault_fade_s + self.unload_time_s() + 2 / self.rate_hz

    def time_to_zero_after_disable_s(self) -> float:
        """Worst case from a disable request to zero force."""
        return self.fade_out_s + self.unload_time_s() + 2 / self.rate_hz


class EnableStateMachine:
    """DISABLED -> FADING_IN -> ENABLED -> FADING_OUT -> DISABLED, reversible mid-fade."""

    def __init__(self, fade_in_s: float, fade_out_s: float, requested: bool = False) -> None:
        self._fade = SmoothFade(fade_in_s, fade_out_s)
        self.requested = requested

    @property
    def scale(self) -> float:
        """Current 0..1 multiplier."""
        return self._fade.value

    @property
    def state(self) -> AssistanceState:
        """State derived from the request and the fade's progress."""
        value = self._fade.value
        if self.requested:
            return AssistanceState.ENABLED if value >= 1.0 else AssistanceState.FADING_IN
        return AssistanceState.FADING_OUT if value > 0.0 else AssistanceState.DISABLED

    def step(self, dt: float) -> float:
        """Advance the fade by ``dt`` seconds; return the scale."""
        return self._fade.step(self.requested, dt)


class ButterworthLowPass:
    """Causal Butterworth low-pass (scipy.signal design), filtered one sample at a time."""

    def __init__(self, cutoff_hz: float, order: int, sample_rate_hz: float) -> None:
        self.sos = signal.butter(order, cutoff_hz, btype="low", fs=sample_rate_hz, output="sos")
        self._zi_unit = signal.sosfilt_zi(self.sos)
        self._zi: np.ndarray | None = None

    def __call__(self, x: float) -> float:
        """Filter one sample; the first sample initialises the state at steady state."""
        if self._zi is None:
            self._zi = self._zi_unit * x
        y, self._zi = signal.sosfilt(self.sos, [x], zi=self._zi)
        return float(y[0])


class _SideChannel:
    """One side's chain: hold -> filter -> delay -> torque -> fades -> force limits."""

    def __init__(self, config: AssistanceConfig) -> None:
        self.lowpass = ButterworthLowPass(config.filter_cutoff_hz, config.filter_order,
                                          config.rate_hz)
        self.delay_line: deque[float] = deque(maxlen=config.delay_samples + 1)
        self.input_fade = SmoothFade(config.fade_in_s, config.fault_fade_s)
        self.last_good_moment = 0.0
        self.force_n = 0.0

    def step(self, config: AssistanceConfig, moment: float | None, scale: float,
             dt: float) -> tuple[float, float, bool]:
        """Return (torque_nm, force_n, input_ok) for this tick; ``moment`` None = no good input."""
        input_ok = moment is not None
        if input_ok:
            self.last_good_moment = moment
        filtered = self.lowpass(self.last_good_moment)
        self.delay_line.append(filtered)
        delayed = self.delay_line[0]  # delay_samples old once full; the first sample until then
        torque = config.gain * config.body_mass_kg * delayed
        direction = 1.0 if config.direction == "extension" else -1.0
        scale *= self.input_fade.step(input_ok, dt)
        target = clamp(scale * max(direction * torque, 0.0) / config.moment_arm_m,
                       0.0, config.max_force_n)
        self.force_n = clamp(slew(self.force_n, target, config.max_force_rate_n_per_s * dt),
                             0.0, config.max_force_n)
        return direction * self.force_n * config.moment_arm_m, self.force_n, input_ok


@dataclass(frozen=True)
class EstimateSample:
    """The latest hip-moment estimate as received (moments in N·m/kg, + = extension)."""

    stamp_s: float
    received_s: float
    left_moment_nm_per_kg: float
    right_moment_nm_per_kg: float
    left_valid: bool
    right_valid: bool


@dataclass(frozen=True)
class AssistanceOutput:
    """One assistance command (fields as in exo_msgs/AssistanceCommand)."""

    state: AssistanceState
    enabled: bool
    fade_scale: float
    left_torque_nm: float
    right_torque_nm: float
    left_force_n: float
    right_force_n: float
    left_input_ok: bool
    right_input_ok: bool


class AssistanceProfile:
    """Fixed-rate assistance pipeline for both sides, with the enable state machine."""

    def __init__(self, config: AssistanceConfig) -> None:
        self.config = config
        self.enable = EnableStateMachine(config.fade_in_s, config.fade_out_s,
                                         requested=config.enabled_on_start)
        self._sides = {side: _SideChannel(config) for side in SIDES}
        self._estimate: EstimateSample | None = None
        self.rejected_out_of_order = 0

    def set_enabled(self, requested: bool) -> None:
        """Request assistance on (fade in) or off (fade out)."""
        self.enable.requested = bool(requested)

    def update_live(self, config: AssistanceConfig) -> None:
        """Swap in a configuration that differs only in fields marked live (gains, limits)."""
        self.config = config

    def receive(self, sample: EstimateSample) -> bool:
        """Keep ``sample`` as the latest estimate unless it is older than the one held."""
        if self._estimate is not None and sample.stamp_s < self._estimate.stamp_s:
            self.rejected_out_of_order += 1
            return False
        self._estimate = sample
        return True

    def _good_moment(self, side: str, now_s: float) -> float | None:
        """Moment of ``side`` if the latest estimate is fresh, flagged valid and finite."""
        est = self._estimate
        if est is None or now_s - est.received_s > self.config.estimate_timeout_s:
            return None
        moment = getattr(est, f"{side}_moment_nm_per_kg")
        valid = getattr(est, f"{side}_valid")
        return moment if valid and math.isfinite(moment) else None

    def step(self, now_s: float) -> AssistanceOutput:
        """Compute one command at time ``now_s`` (monotonic seconds, one call per 1/rate_hz)."""
        dt = 1.0 / self.config.rate_hz
        enable_scale = self.enable.step(dt)
        values = {}
        for side, channel in self._sides.items():
            active = self.config.side in ("both", side)
            values[side] = channel.step(self.config, self._good_moment(side, now_s),
                                        enable_scale if active else 0.0, dt)
        return AssistanceOutput(
            state=self.enable.state,
            enabled=self.enable.requested,
            fade_scale=enable_scale,
            left_torque_nm=values["left"][0],
            right_torque_nm=values["right"][0],
            left_force_n=values["left"][1],
            right_force_n=values["right"][1],
            left_input_ok=values["left"][2],
            right_input_ok=values["right"][2],
        )
