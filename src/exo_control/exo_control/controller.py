"""The reference level of the assistance controller: assistance command -> cable-force reference.

No ROS here. The force loop itself (admittance + PD) runs at the actuator, beside the sensors
and motors (exo_control.force_loop), because a loop closed across two processes over DDS opens
whenever either is descheduled. This level runs at a rate ROS and Python hold on a loaded
machine (default 200 Hz). Per side and per cycle:

    force reference  f_ref = slew(clamp(watchdog_scale * f_cmd, 0, max_force), max_force_rate)
    force rate       (f_ref - f_ref_previous) / dt, sent with it for the actuator to extrapolate

Watchdog (checked every cycle, feedback problems first):

* no actuator state for ``state_timeout_s``, or a non-finite one, or actuator fault flags ->
  the force reference fades to zero over ``watchdog_fade_s`` (the actuator releases on its own
  as well);
* stale or non-finite assistance command -> the last good command is held while the force
  reference fades to zero over ``watchdog_fade_s``, under closed-loop force control (the cable
  is unloaded gently);
* a faded-out reference is sent with ``enabled`` false, and so is a zero reference while the
  assistance is disabled or has lost its estimate: the actuator pays the cable out to slack
  instead of tracking zero force against a walking wearer;
* when every input is good again the scale fades back in over ``watchdog_recover_s``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from exo_common.params import spec, validate_fields

from exo_control.actuator import ActuatorReading
from exo_control.assistance import SIDES
from exo_control.limits import SmoothFade, clamp, slew


class Watchdog(enum.IntEnum):
    """Watchdog verdict; values match exo_msgs/ControllerState WATCHDOG_*."""

    OK = 0
    STALE_COMMAND = 1
    STALE_ACTUATOR = 2
    INVALID_INPUT = 3
    ACTUATOR_FAULT = 4


@dataclass(frozen=True)
class ControllerConfig:
    """Parameters of the reference level; ranges reject physically absurd values."""

    rate_hz: float = spec(200.0, "reference rate, Hz", 20.0, 1000.0)
    max_force_n: float = spec(200.0, "force reference limit, N", 0.0, 500.0, live=True)
    max_force_rate_n_per_s: float = spec(4000.0, "force reference slew-rate limit, N/s",
                                         1.0, 50000.0, live=True)
    command_timeout_s: float = spec(0.1, "assistance command older than this is stale, s",
                                    0.005, 1.0)
    state_timeout_s: float = spec(0.25, "actuator state older than this is stale, s",
                                  0.005, 2.0)
    watchdog_fade_s: float = spec(0.1, "force-reference fade-out after a watchdog trip, s",
                                  0.005, 2.0)
    watchdog_recover_s: float = spec(0.5, "force-reference fade-in once inputs are good, s",
                                     0.01, 10.0)
    state_publish_rate_hz: float = spec(100.0, "ControllerState publish rate, Hz", 1.0, 1000.0)
    autostart: bool = spec(True, "configure and activate at start-up (else wait for lifecycle"
                           " transitions)")
    realtime_priority: int = spec(0, "SCHED_FIFO priority of the node's threads (0: normal"
                                  " scheduling; warns without permission)", 0, 98)

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.command_timeout_s < 2.0 / self.rate_hz:
            raise ValueError(f"command_timeout_s={self.command_timeout_s} must cover two"
                             f" periods ({2.0 / self.rate_hz} s)")

    def unload_time_after_stale_command_s(self) -> float:
        """Worst case from the last good command to zero force reference."""
        return (self.command_timeout_s + self.watchdog_fade_s
                + self.max_force_n / self.max_force_rate_n_per_s + 2.0 / self.rate_hz)


@dataclass(frozen=True)
class SideOutput:
    """One side's reference for one cycle."""

    force_reference_n: float
    force_rate_n_per_s: float
    force_error_n: float


@dataclass(frozen=True)
class ControllerOutput:
    """One cycle's reference and watchdog state (fields as in exo_msgs/ControllerState)."""

    watchdog: Watchdog
    output_scale: float
    enabled: bool
    left: SideOutput
    right: SideOutput
    period_s: float  # measured since the previous cycle, not clamped


def _reading_is_finite(reading: ActuatorReading) -> bool:
    return all(math.isfinite(v) for side in (reading.left, reading.right)
               for v in (side.force_n, side.position_rad, side.velocity_rad_s))


class ForceReferenceController:
    """Both sides' force references plus the watchdog; call ``step`` once per period."""

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self._scale = SmoothFade(config.watchdog_recover_s, config.watchdog_fade_s)
        self._command: tuple[float, float, float] | None = None  # left N, right N, received s
        self._assisting = False
        self._last_command = [0.0, 0.0]  # last finite command per side, N
        self._reference = [0.0, 0.0]
        self._reading: tuple[ActuatorReading, float] | None = None
        self._last_step_s: float | None = None

    def update_live(self, config: ControllerConfig) -> None:
        """Swap in a configuration that differs only in fields marked live (limits)."""
        self.config = config

    def set_command(self, left_force_n: float, right_force_n: float, received_s: float,
                    assisting: bool = True) -> None:
        """Latest desired cable forces (N) from the assistance profile.

        ``assisting`` False: the profile is disabled or has no good estimate, so once the
        forces are zero the cable should be slack rather than tracked at zero.
        """
        self._command = (left_force_n, right_force_n, received_s)
        self._assisting = bool(assisting)

    def set_measurement(self, reading: ActuatorReading, received_s: float) -> None:
        """Latest actuator state."""
        self._reading = (reading, received_s)

    def watchdog(self, now_s: float) -> Watchdog:
        """Verdict on the inputs at ``now_s``; feedback problems take precedence."""
        cfg = self.config
        if self._reading is None or now_s - self._reading[1] > cfg.state_timeout_s:
            return Watchdog.STALE_ACTUATOR
        reading = self._reading[0]
        if not _reading_is_finite(reading):
            return Watchdog.INVALID_INPUT
        if reading.left.fault_flags or reading.right.fault_flags:
            return Watchdog.ACTUATOR_FAULT
        if self._command is None or now_s - self._command[2] > cfg.command_timeout_s:
            return Watchdog.STALE_COMMAND
        if not (math.isfinite(self._command[0]) and math.isfinite(self._command[1])):
            return Watchdog.INVALID_INPUT
        return Watchdog.OK

    def step(self, now_s: float) -> ControllerOutput:
        """Run one cycle at monotonic time ``now_s`` (seconds)."""
        cfg = self.config
        nominal = 1.0 / cfg.rate_hz
        period = nominal if self._last_step_s is None else now_s - self._last_step_s
        # The slew limit applies per nominal period at most: a late cycle never jumps further.
        dt = clamp(period, 0.0, 2.0 * nominal)
        self._last_step_s = now_s
        verdict = self.watchdog(now_s)
        scale = self._scale.step(verdict == Watchdog.OK, dt)
        reading = self._reading[0] if self._reading else None
        outputs = []
        for index, side in enumerate(SIDES):
            if self._command is not None and math.isfinite(self._command[index]):
                self._last_command[index] = self._command[index]
            target = clamp(scale * self._last_command[index], 0.0, cfg.max_force_n)
            previous = self._reference[index]
            reference = clamp(slew(previous, target, cfg.max_force_rate_n_per_s * dt),
                              0.0, cfg.max_force_n)
            self._reference[index] = reference
            rate = (reference - previous) / dt if dt > 0.0 else 0.0
            error = reference - getattr(reading, side).force_n if reading else math.nan
            outputs.append(SideOutput(reference, rate, error))
        enabled = any(self._reference) or (verdict == Watchdog.OK and self._assisting)
        return ControllerOutput(verdict, scale, enabled, outputs[0], outputs[1], period)
