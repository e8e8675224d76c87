"""The estimator without ROS: two leg windows, the ensemble, staleness and diagnostics state.

The node hands every joint-state sample to ``HipMomentEstimator.on_sample`` and publishes what
comes back; everything that decides whether an estimate exists, and what the diagnostics say,
lives here so it can be tested with plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from k2muse_inference.ensemble import Ensemble
from k2muse_inference.model import FeatureBuilder
from k2muse_inference.stats import LatencyStats, RateMeter
from k2muse_inference.window import NS_PER_S, LegHistory, Verdict, WindowEnd, WindowSpec

SIDES = ("left", "right")

# diagnostic_msgs/DiagnosticStatus levels, repeated here to keep this module free of ROS.
OK, WARN, ERROR = 0, 1, 2


@dataclass(frozen=True)
class Estimate:
    """One published estimate: moments in N·m/kg (0.0 where not valid), never NaN."""

    stamp_ns: int
    moments_nm_per_kg: tuple[float, float]  # left, right
    valid: tuple[bool, bool]
    latency_s: float


@dataclass(frozen=True)
class Health:
    """Diagnostics summary: level (OK/WARN/ERROR), one-line reason, key/value details."""

    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


class HipMomentEstimator:
    """Windows both legs, runs the ensemble on the ready ones and tracks input health."""

    def __init__(
        self,
        spec: WindowSpec,
        features: FeatureBuilder,
        ensemble: Ensemble,
        stale_timeout_s: float = 0.1,
        max_input_age_s: float = 0.5,
        max_stamp_lead_s: float = 0.1,
    ):
        if not max_stamp_lead_s > 0.0:
            raise ValueError(f"max_stamp_lead_s must be positive, got {max_stamp_lead_s}")
        self.spec = spec
        self.features = features
        self.ensemble = ensemble
        self.stale_timeout_s = stale_timeout_s
        self.max_input_age_s = max_input_age_s
        self.max_stamp_lead_s = max_stamp_lead_s
        self.legs = [LegHistory(spec) for _ in SIDES]
        self.latency = LatencyStats()
        self.input_rate = RateMeter()
        self.estimate_rate = RateMeter()
        self.received = 0  # joint states handed in, whatever became of them
        self.published = 0
        self.old_stamps = 0
        self.future_stamps = 0
        self.rejected_outputs = 0
        self._last_input_ns: int | None = None
        self._last_window_end_ns: int | None = None  # the instant last estimated
        self._last_estimate_valid = (False, False)
        self._old_input_age_s: float | None = None  # set while arriving stamps are too old
        self._future_lead_s: float | None = None  # set while arriving stamps are in the future

    def on_sample(
        self, stamp_ns: int, angles_rad: tuple[float | None, float | None], received_ns: int
    ) -> Estimate | None:
        """Take one sample per leg (None where the message lacked that leg); maybe estimate.

        ``received_ns`` is the clock reading on arrival, on the same time base as the stamps.
        Stamps are bounded against it both ways: older than ``max_input_age_s`` or more than
        ``max_stamp_lead_s`` ahead, the sample is dropped and counted, and never enters a
        window (one far-future stamp would otherwise make every later sample out of order).
        Returns None when no leg has a complete, trustworthy window for this stamp, or, with
        windows ending on the model grid, when this sample crossed no new grid instant (the
        estimate is stamped with its window's last instant).
        """
        self._last_input_ns = received_ns
        self.received += 1
        self.input_rate.tick(received_ns / NS_PER_S)
        age_s = (received_ns - stamp_ns) / NS_PER_S
        if self.max_input_age_s > 0.0 and age_s > self.max_input_age_s:
            self.old_stamps += 1
            self._old_input_age_s = age_s
            self._last_estimate_valid = (False, False)
            return None
        if -age_s > self.max_stamp_lead_s:
            self.future_stamps += 1
            self._future_lead_s = -age_s
            return None
        self._old_input_age_s = self._future_lead_s = None

        kept = [angle is not None and leg.add(stamp_ns, angle).kept
                for leg, angle in zip(self.legs, angles_rad, strict=True)]
        end_ns = self.spec.window_end_ns(stamp_ns)
        if self.spec.window_end is WindowEnd.MODEL_GRID and end_ns == self._last_window_end_ns:
            return None  # no new grid instant crossed: that window was estimated already
        rows, ready = [], []
        for side, leg in enumerate(self.legs):
            window = leg.window() if kept[side] else None
            if window is not None:
                rows.append(self.features(window))
                ready.append(side)
        if not rows:
            self._last_estimate_valid = (False, False)
            return None
        self._last_window_end_ns = end_ns

        output = self.ensemble(np.stack(rows))
        moments, valid = [0.0, 0.0], [False, False]
        for row, side in enumerate(ready):
            moments[side] = float(output.moments_nm_per_kg[row])
            valid[side] = bool(output.valid[row])
        self.rejected_outputs += len(ready) - int(np.count_nonzero(output.valid))
        self.latency.add(output.latency_s)
        self._last_estimate_valid = (valid[0], valid[1])
        if not any(valid):
            return None
        self.published += 1
        self.estimate_rate.tick(received_ns / NS_PER_S)
        return Estimate(end_ns, (moments[0], moments[1]), (valid[0], valid[1]),
                        output.latency_s)

    def is_stale(self, now_ns: int) -> bool:
        """True when no joint state arrived for longer than ``stale_timeout_s``."""
        if self._last_input_ns is None:
            return True
        return (now_ns - self._last_input_ns) / NS_PER_S > self.stale_timeout_s

    def leg_state(self, side: int) -> str:
        """Why one leg is or is not estimated, in words."""
        leg = self.legs[side]
        if self._last_estimate_valid[side]:
            return "valid"
        verdict = leg.last_verdict
        if verdict is None:
            return "no data"
        if not verdict.kept:
            return f"invalid: {verdict.value}"
        if leg.window() is None:
            return f"filling window ({100.0 * leg.covered_fraction():.0f} %)"
        return "invalid: model output rejected"

    def health(self, now_ns: int) -> Health:
        """Diagnostics for the current moment: stale input is an error, a missing leg a warning."""
        now_s = now_ns / NS_PER_S
        values = {
            "input_rate_hz": f"{self.input_rate.rate_hz(now_s):.1f}",
            "estimate_rate_hz": f"{self.estimate_rate.rate_hz(now_s):.1f}",
            "joint_states_received": str(self.received),
            "estimates_published": str(self.published),
            "stale_timeout_s": f"{self.stale_timeout_s:g}",
            "old_stamps_dropped": str(self.old_stamps),
            "future_stamps_dropped": str(self.future_stamps),
            "rejected_model_outputs": str(self.rejected_outputs),
            # a streaming backend: windows that cost one model step vs a whole window
            "model_steps": str(self.ensemble.steps),
            "model_primes": str(self.ensemble.primes),
        }
        summary = self.latency.summary()
        if summary is not None:
            values.update({
                "latency_p50_ms": f"{summary.p50_s * 1e3:.3f}",
                "latency_p90_ms": f"{summary.p90_s * 1e3:.3f}",
                "latency_p99_ms": f"{summary.p99_s * 1e3:.3f}",
                "latency_max_ms": f"{summary.max_s * 1e3:.3f}",
            })
        for side, name in enumerate(SIDES):
            values[f"{name}_state"] = self.leg_state(side)
            for verdict in Verdict:
                if not verdict.kept and self.legs[side].counts[verdict]:
                    key = f"{name}_{verdict.name.lower()}_samples"
                    values[key] = str(self.legs[side].counts[verdict])
            values[f"{name}_gaps"] = str(self.legs[side].counts[Verdict.RESTARTED_AFTER_GAP])

        if self._last_input_ns is None:
            return Health(ERROR, "stale input: no joint state received yet", values)
        if self.is_stale(now_ns):
            silence = (now_ns - self._last_input_ns) / NS_PER_S
            return Health(ERROR, f"stale input: no joint state for {silence:.2f} s; "
                                 "no estimates published", values)
        if self._old_input_age_s is not None:
            return Health(ERROR, f"stale input: joint state stamps {self._old_input_age_s:.2f} s "
                                 f"old (max_input_age_s {self.max_input_age_s:g})", values)
        if self._future_lead_s is not None:
            return Health(ERROR, f"bad input: joint state stamps {self._future_lead_s:.2f} s in "
                                 f"the future (max_stamp_lead_s {self.max_stamp_lead_s:g})",
                          values)
        states = [values[f"{name}_state"] for name in SIDES]
        if all(state == "valid" for state in states):
            return Health(OK, "estimating both legs", values)
        detail = ", ".join(f"{name}: {state}" for name, state in zip(SIDES, states, strict=True))
        return Health(WARN, detail, values)

