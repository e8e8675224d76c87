"""Reference level of the controller: watchdog, fades, limits, real loop period (pure Python)."""

import math

import pytest
from exo_control.actuator import ActuatorReading, Fault, SideReading
from exo_control.controller import ControllerConfig, ForceReferenceController, Watchdog

from exo_msgs.msg import ControllerState

RATE = 200.0
DT = 1.0 / RATE


def reading(force_n=50.0, flags=0):
    side = SideReading(force_n, 1.0, 0.0, flags)
    return ActuatorReading(side, side)


class Rig:
    """The controller stepped at 200 Hz with inputs that can be withheld or corrupted."""

    def __init__(self, **config):
        self.cfg = ControllerConfig(rate_hz=RATE, **config)
        self.controller = ForceReferenceController(self.cfg)
        self.t = 0.0
        self.outputs = []

    def run(self, seconds, force_n=100.0, *, send_command=True, send_state=True, state=None):
        for _ in range(round(seconds * RATE)):
            self.t += DT
            if send_state:
                self.controller.set_measurement(state or reading(), self.t)
            if send_command:
                self.controller.set_command(force_n, force_n, self.t)
            self.outputs.append(self.controller.step(self.t))
        return self.outputs[-1]

    def references(self, start=0):
        return [o.left.force_reference_n for o in self.outputs[start:]]


def test_watchdog_values_match_the_message_constants():
    for verdict in Watchdog:
        assert getattr(ControllerState, f"WATCHDOG_{verdict.name}") == verdict.value


def test_no_input_at_start_sends_a_disabled_zero_reference():
    controller = ForceReferenceController(ControllerConfig())
    out = controller.step(0.0)
    assert out.watchdog == Watchdog.STALE_ACTUATOR
    assert not out.enabled and out.left.force_reference_n == 0.0


def test_good_inputs_fade_in_then_follow_the_command_within_the_slew_limit():
    rig = Rig()
    out = rig.run(1.0)
    assert out.watchdog == Watchdog.OK and out.enabled and out.output_scale == 1.0
    assert out.left.force_reference_n == pytest.approx(100.0)
    steps = [b - a for a, b in zip(rig.references(), rig.references()[1:], strict=False)]
    assert max(steps) <= rig.cfg.max_force_rate_n_per_s * DT + 1e-9
    assert all(o.left.force_rate_n_per_s <= rig.cfg.max_force_rate_n_per_s + 1e-9
               for o in rig.outputs)


def test_stale_command_fades_out_within_the_stated_time_then_disables():
    rig = Rig()
    rig.run(1.0)
    start = len(rig.outputs)
    out = rig.run(1.0, send_command=False)
    assert out.watchdog == Watchdog.STALE_COMMAND and not out.enabled
    zero = next(i for i, f in enumerate(rig.references(start)) if f == 0.0)
    assert zero * DT <= rig.cfg.unload_time_after_stale_command_s()


@pytest.mark.parametrize(("what", "kwargs", "verdict"), [
    ("state stops", {"send_state": False}, Watchdog.STALE_ACTUATOR),
    ("actuator fault", {"state": reading(flags=int(Fault.OVER_FORCE))}, Watchdog.ACTUATOR_FAULT),
    ("NaN state", {"state": reading(force_n=math.nan)}, Watchdog.INVALID_INPUT),
])
def test_actuator_problems_fade_the_reference_out(what, kwargs, verdict):
    rig = Rig()
    rig.run(1.0)
    out = rig.run(1.0, **kwargs)
    assert out.watchdog == verdict, what
    assert out.left.force_reference_n == 0.0 and not out.enabled, what


def test_a_disabled_or_blind_assistance_releases_the_cable_once_its_force_is_zero():
    rig = Rig()
    rig.run(1.0)
    for _ in range(round(0.5 * RATE)):  # the profile fades its force out (lost its estimate)
        rig.t += DT
        rig.controller.set_measurement(reading(), rig.t)
        commanded = max(0.0, 100.0 - 400.0 * (rig.t - 1.0))
        rig.controller.set_command(commanded, commanded, rig.t, assisting=False)
        out = rig.controller.step(rig.t)
        assert out.watchdog == Watchdog.OK
        assert out.enabled == (out.left.force_reference_n > 0.0)
    assert not out.enabled and out.left.force_reference_n == 0.0


def test_zero_force_while_assisting_keeps_tracking():
    rig = Rig()
    out = rig.run(1.0, force_n=0.0)  # e.g. the swing phase of an extension-only profile
    assert out.enabled and out.left.force_reference_n == 0.0


def test_nan_command_holds_the_last_good_command_while_fading_out():
    rig = Rig()
    rig.run(1.0)
    out = rig.run(0.02, force_n=math.nan)
    assert out.watchdog == Watchdog.INVALID_INPUT
    assert 0.0 < out.left.force_reference_n <= 100.0 and math.isfinite(out.left.force_rate_n_per_s)


def test_recovery_fades_back_in():
    rig = Rig()
    rig.run(1.0)
    rig.run(0.5, send_command=False)
    start = len(rig.outputs)
    out = rig.run(1.0)
    assert out.watchdog == Watchdog.OK and out.left.force_reference_n == pytest.approx(100.0)
    assert rig.references(start)[0] < 10.0


def test_force_limit_holds_and_a_live_lower_limit_applies_at_once():
    rig = Rig()
    rig.run(1.0, force_n=1000.0)
    assert max(rig.references()) <= rig.cfg.max_force_n
    rig.controller.update_live(ControllerConfig(rate_hz=RATE, max_force_n=20.0))
    out = rig.run(DT, force_n=1000.0)
    assert out.left.force_reference_n <= 20.0


def test_the_reported_period_is_the_real_one_even_after_a_stall():
    controller = ForceReferenceController(ControllerConfig(rate_hz=RATE))
    controller.step(0.0)
    out = controller.step(0.3)  # a 300 ms stall
    assert out.period_s == pytest.approx(0.3)


def test_a_late_cycle_does_not_jump_the_reference():
    rig = Rig()
    rig.run(0.2, force_n=0.0)
    rig.controller.set_command(200.0, 200.0, rig.t + 0.3)
    rig.controller.set_measurement(reading(), rig.t + 0.3)
    before = rig.references()[-1]
    out = rig.controller.step(rig.t + 0.3)
    assert out.left.force_reference_n - before <= rig.cfg.max_force_rate_n_per_s * 2 * DT + 1e-9


@pytest.mark.parametrize(("field", "value"), [
    ("rate_hz", 0.0), ("max_force_n", math.inf), ("command_timeout_s", -1.0),
    ("watchdog_fade_s", math.nan)])
def test_absurd_parameters_are_rejected_with_their_name(field, value):
    with pytest.raises(ValueError, match=field):
        ControllerConfig(**{field: value})
