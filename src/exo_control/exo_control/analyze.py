"""``exo-analyze``: turn a graph recording (MCAP bag) into plots and a metrics summary.

Reads the bag written by ``topic_recorder`` with rosbags and computes what tells whether the
assistance graph did its job:

- estimate accuracy: hip-moment estimate vs the replayed measured moment (JointState effort) at
  the estimate's own stamp (the stamp of the newest angle sample in its window), RMSE and R²;
- force tracking: measured cable force vs the force reference the controller sent (and vs
  the assistance profile's desired force), RMSE and largest error;
- the force the wearer felt: largest measured cable tension per side and the samples above
  the force limit (plus ``measured_force_margin``), the figure that judges the control;
- limit violations: desired force above the force limit or below zero, force rate, motor
  velocity and acceleration above their limits, non-finite commands, measured tension above
  the limit, actuator fault flags;
- fault responses: after each fault onset (controller watchdog leaving OK, assistance fading
  out, an actuator fault flag), the time until the force reference is back at zero, the motor
  command has stopped and the measured tension is released.

All times are header stamps on the ROS clock, in seconds from the first message.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from k2muse_dataset.cli_errors import run_command
from sklearn.metrics import max_error, r2_score, root_mean_squared_error

from .trial_source import DEFAULT_JOINT_NAMES

SIDES = ("left", "right")
Series = dict[str, np.ndarray]  # field -> array over messages; "t" is the stamp in s


class AnalysisError(ValueError):
    """A recording that cannot be analysed; the message names the bag and the problem."""


@dataclass(frozen=True)
class Limits:
    """Bounds the graph must respect (see :func:`default_limits`)."""

    max_force_n: float
    max_force_rate_n_per_s: float
    max_motor_velocity_rad_s: float
    max_motor_accel_rad_s2: float
    tolerance: float = 0.02  # relative slack for rounding
    measured_force_margin: float = 0.05  # measured tension may exceed max_force_n by this share
    # Stamps are taken a little after the step that computed a value (a thread switch or a
    # busy core can delay that); this much stamp jitter is allowed when a rate (force rate,
    # motor acceleration) is computed from stamp spacing.
    stamp_jitter_s: float = 0.002


LIMIT_SECTIONS = ("assistance_profile", "admittance_controller", "simulated_actuator")


def _limit_configs() -> dict[str, type]:
    from .assistance import AssistanceConfig
    from .controller import ControllerConfig
    from .force_loop import ForceLoopConfig

    return dict(zip(LIMIT_SECTIONS, (AssistanceConfig, ControllerConfig, ForceLoopConfig),
                    strict=True))


def default_limits(assistance: dict | None = None, controller: dict | None = None,
                   actuator: dict | None = None) -> Limits:
    """The limits the assistance profile, controller and actuator loop enforce.

    Each argument: parameter overrides (name -> value) of that node, as in its YAML file; the
    rest are the nodes' defaults.
    """
    from exo_common.params import config_from_mapping

    a, c, f = (config_from_mapping(kind, values or {}) for kind, values in zip(
        _limit_configs().values(), (assistance, controller, actuator), strict=True))
    return Limits(max_force_n=max(a.max_force_n, c.max_force_n, f.max_force_n),
                  max_force_rate_n_per_s=a.max_force_rate_n_per_s,
                  max_motor_velocity_rad_s=f.max_velocity_rad_s,
                  max_motor_accel_rad_s2=f.max_acceleration_rad_s2)


def limits_from_params_files(paths: Sequence[str | Path]) -> Limits:
    """Limits from the ROS 2 parameter YAML files the graph ran with.

    Reads the ``assistance_profile``, ``admittance_controller`` and ``simulated_actuator``
    sections (``/**`` wildcard sections apply to all; later files win); other nodes' sections
    and names are ignored.
    """
    import yaml
    from exo_common.params import field_specs

    sections: dict[str, dict] = {name: {} for name in LIMIT_SECTIONS}
    for path in paths:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise AnalysisError(f"{path}: cannot read parameter file ({exc})") from None
        for node, merged in sections.items():
            for key in ("/**", node, "/" + node):
                merged.update((data.get(key) or {}).get("ros__parameters") or {})
    try:
        return default_limits(*({k: v for k, v in sections[name].items()
                                 if k in field_specs(kind)}
                                for name, kind in _limit_configs().items()))
    except (ValueError, TypeError) as exc:
        raise AnalysisError(f"{', '.join(map(str, paths))}: {exc}") from None


@dataclass
class Recording:
    """The graph's topics as arrays; a topic missing from the bag is None."""

    path: Path
    t0_ns: int
    counts: dict[str, int]
    joints: Series | None = None
    estimate: Series | None = None
    command: Series | None = None
    motor: Series | None = None
    actuator: Series | None = None
    controller: Series | None = None
    events: Series | None = None

    SERIES = ("joints", "estimate", "command", "motor", "actuator", "controller", "events")

    def seconds(self, ros_time_ns: int) -> float:
        """A ROS-clock time in this recording's time base (seconds from its first message)."""
        return (ros_time_ns - self.t0_ns) * 1e-9

    def until(self, end_s: float) -> Recording:
        """The part of the recording before ``end_s`` (same time base)."""
        cut = {}
        for name in self.SERIES:
            series = getattr(self, name)
            if series is not None:
                keep = series["t"] < end_s
                cut[name] = {key: values[keep] for key, values in series.items()}
        return Recording(path=self.path, t0_ns=self.t0_ns, counts=self.counts, **cut)


def _pair(msg, left: str, right: str) -> list[float]:
    return [float(getattr(msg, left)), float(getattr(msg, right))]


def _joint_fields(joint_names: Sequence[str]):
    def extract(msg) -> dict | None:
        names = list(msg.name)
        try:
            idx = [names.index(n) for n in joint_names]
        except ValueError:
            return None
        effort = list(msg.effort)
        return {
            "position": [float(msg.position[i]) for i in idx],
            "effort": [float(effort[i]) if len(effort) > i else math.nan for i in idx],
        }
    return extract


def _estimate_fields(msg) -> dict:
    return {"moment": _pair(msg, "left_moment_nm_per_kg", "right_moment_nm_per_kg"),
            "valid": [bool(msg.left_valid), bool(msg.right_valid)],
            "latency": float(msg.inference_latency_s)}


def _command_fields(msg) -> dict:
    return {"state": int(msg.state), "enabled": bool(msg.enabled),
            "fade_scale": float(msg.fade_scale),
            "torque": _pair(msg, "left_torque_nm", "right_torque_nm"),
            "force": _pair(msg, "left_force_n", "right_force_n")}


def _motor_fields(msg) -> dict:
    return {"enabled": bool(msg.enabled),
            "velocity": _pair(msg, "left_velocity_rad_s", "right_velocity_rad_s")}


def _actuator_fields(msg) -> dict:
    return {"force": _pair(msg, "left_cable_force_n", "right_cable_force_n"),
            "reference": _pair(msg, "left_force_reference_n", "right_force_reference_n"),
            "mode": int(msg.mode),
            "motor_velocity": _pair(msg, "left_motor_velocity_rad_s",
                                    "right_motor_velocity_rad_s"),
            "faults": [int(msg.left_fault_flags), int(msg.right_fault_flags)]}


def _controller_fields(msg) -> dict:
    return {"watchdog": int(msg.watchdog), "enabled": bool(msg.enabled),
            "output_scale": float(msg.output_scale),
            "reference": _pair(msg, "left_force_reference_n", "right_force_reference_n"),
            "error": _pair(msg, "left_force_error_n", "right_force_error_n"),
            "loop_period": float(msg.loop_period_s)}


def _event_fields(msg) -> dict:
    return {"side": int(msg.side), "kind": int(msg.kind)}


def load_recording(path: str | Path, joint_names: Sequence[str] = DEFAULT_JOINT_NAMES
                   ) -> Recording:
    """Read a bag folder (or its .mcap file) into per-topic arrays."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2.errors import ReaderError

    from .recorder import exo_typestore

    path = Path(path)
    bag_dir = path.parent if path.is_file() else path
    extractors = {
        "/joint_states": ("joints", _joint_fields(joint_names)),
        "/hip_moment/estimate": ("estimate", _estimate_fields),
        "/assistance/command": ("command", _command_fields),
        "/actuator/motor_command": ("motor", _motor_fields),
        "/actuator/state": ("actuator", _actuator_fields),
        "/controller/state": ("controller", _controller_fields),
        "/gait_events": ("events", _event_fields),
    }
    rows: dict[str, list[tuple[int, dict]]] = {name: [] for name, _ in extractors.values()}
    counts: dict[str, int] = {}
    if not bag_dir.exists():
        raise AnalysisError(f"{path}: no such bag")
    try:
        with AnyReader([bag_dir], default_typestore=exo_typestore()) as reader:
            wanted = [c for c in reader.connections if c.topic in extractors]
            for connection, receive_ns, raw in reader.messages(connections=wanted):
                name, extract = extractors[connection.topic]
                msg = reader.deserialize(raw, connection.msgtype)
                fields = extract(msg)
                if fields is None:
                    continue
                stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                rows[name].append((stamp_ns or receive_ns, fields))
                counts[connection.topic] = counts.get(connection.topic, 0) + 1
    except (ReaderError, OSError, KeyError) as exc:
        raise AnalysisError(f"{path}: cannot read bag ({exc})") from None
    if not any(rows.values()):
        raise AnalysisError(f"{path}: no messages of the assistance graph's topics")
    t0_ns = min(r[0][0] for r in rows.values() if r)
    recording = Recording(path=path, t0_ns=t0_ns, counts=counts)
    for name, series_rows in rows.items():
        if not series_rows:
            continue
        series_rows.sort(key=lambda row: row[0])
        series: Series = {"t": np.array([(s - t0_ns) * 1e-9 for s, _ in series_rows])}
        for key in series_rows[0][1]:
            series[key] = np.array([fields[key] for _, fields in series_rows])
        setattr(recording, name, series)
    return recording


# --- metrics --------------------------------------------------------------------------------

def fit_metrics(estimate: np.ndarray, measured: np.ndarray) -> dict | None:
    """RMSE, R², bias and count of paired finite samples; None when there are fewer than 2."""
    keep = np.isfinite(estimate) & np.isfinite(measured)
    if keep.sum() < 2:
        return None
    estimate, measured = estimate[keep], measured[keep]
    return {"rmse": float(root_mean_squared_error(measured, estimate)),
            "r2": float(r2_score(measured, estimate)) if np.ptp(measured) > 0 else None,
            "bias": float(np.mean(estimate - measured)),
            "max_abs_error": float(max_error(measured, estimate)),
            "samples": int(keep.sum())}


def sample_and_hold(t_source: np.ndarray, values: np.ndarray, t_query: np.ndarray) -> np.ndarray:
    """Value most recently published at or before each query time (NaN before the first)."""
    index = np.searchsorted(t_source, t_query, side="right") - 1
    held = values[np.clip(index, 0, None)].astype(np.float64)
    held[index < 0] = np.nan
    return held


def estimate_accuracy(rec: Recording) -> dict | None:
    """Valid estimates vs the measured moment of the joint state they were computed from."""
    if rec.estimate is None or rec.joints is None:
        return None
    out = {}
    pooled_est, pooled_meas = [], []
    for side, name in enumerate(SIDES):
        valid = rec.estimate["valid"][:, side]
        t = rec.estimate["t"][valid]
        estimate = rec.estimate["moment"][valid, side]
        # The estimate's stamp is its newest angle sample's stamp: take that sample's effort
        # (queried a microsecond late so float rounding of equal stamps cannot miss it).
        measured = sample_and_hold(rec.joints["t"], rec.joints["effort"][:, side], t + 1e-6)
        out[name] = fit_metrics(estimate, measured)
        pooled_est.append(estimate)
        pooled_meas.append(measured)
    out["both"] = fit_metrics(np.concatenate(pooled_est), np.concatenate(pooled_meas))
    out["unit"] = "N*m/kg"
    return out


def force_tracking(rec: Recording) -> dict | None:
    """Measured cable force vs the references and the desired assistance force.

    ``actuator_reference`` is what the fast loop tracked, from the same message as the
    measurement; ``controller_reference`` is what the controller sent (held until its next
    message, so it includes the hop to the actuator).
    """
    if rec.actuator is None:
        return None
    out: dict = {"unit": "N"}
    references = {"actuator_reference": (rec.actuator, "reference"),
                  "controller_reference": (rec.controller, "reference"),
                  "assistance_desired": (rec.command, "force")}
    for label, (series, key) in references.items():
        if series is None:
            continue
        out[label] = {}
        for side, name in enumerate(SIDES):
            reference = sample_and_hold(series["t"], series[key][:, side], rec.actuator["t"])
            metrics = fit_metrics(rec.actuator["force"][:, side], reference)
            if metrics is not None:
                metrics = {"rmse_n": metrics["rmse"], "max_abs_error_n": metrics["max_abs_error"],
                           "samples": metrics["samples"]}
            out[label][name] = metrics
    return out


def rate_excess(t: np.ndarray, values: np.ndarray, max_rate: float, limits: Limits) -> dict:
    """Steps between consecutive samples that change faster than ``max_rate`` allows.

    Each step may change by ``max_rate * (dt + stamp_jitter_s)``; ``worst_ratio`` is the
    largest change over its allowance (<= 1 passes).
    """
    if values.shape[0] < 2:
        return {"steps_over": 0, "worst_ratio": 0.0}
    allowed = max_rate * (np.diff(t) + limits.stamp_jitter_s) * (1.0 + limits.tolerance)
    ratio = (np.nan_to_num(np.abs(np.diff(values, axis=0)), nan=np.inf).max(axis=1)
             / np.maximum(allowed, 1e-12))
    return {"steps_over": int((ratio > 1.0).sum()), "worst_ratio": float(ratio.max())}


def rate_checks(rec: Recording, limits: Limits) -> dict:
    """Desired-force rate and motor acceleration against their limits, from stamp spacing."""
    out: dict = {"stamp_jitter_s": limits.stamp_jitter_s}
    if rec.command is not None:
        out["desired_force_rate"] = rate_excess(rec.command["t"], rec.command["force"],
                                                limits.max_force_rate_n_per_s, limits)
    if rec.motor is not None:
        out["motor_accel"] = rate_excess(rec.motor["t"], rec.motor["velocity"],
                                         limits.max_motor_accel_rad_s2, limits)
    out["steps_over"] = sum(v["steps_over"] for v in out.values() if isinstance(v, dict))
    return out


def limit_violations(rec: Recording, limits: Limits) -> dict:
    """Samples beyond each value limit (0 everywhere is the pass condition)."""
    slack = 1.0 + limits.tolerance
    out: dict[str, int] = {}
    if rec.command is not None:
        force = rec.command["force"]
        out["desired_force_non_finite"] = int((~np.isfinite(force)).sum())
        out["desired_force_above_max"] = int((force > limits.max_force_n * slack).sum())
        out["desired_force_negative"] = int((force < -1e-9).sum())
    if rec.controller is not None:
        reference = rec.controller["reference"]
        out["force_reference_above_max"] = int((reference > limits.max_force_n * slack).sum())
    if rec.motor is not None:
        velocity = rec.motor["velocity"]
        out["motor_command_non_finite"] = int((~np.isfinite(velocity)).sum())
        out["motor_velocity_above_max"] = int(
            (np.abs(velocity) > limits.max_motor_velocity_rad_s * slack).sum())
        out["disabled_but_moving"] = int(
            (~rec.motor["enabled"] & (np.abs(velocity).max(axis=1) > 1e-9)).sum())
    if rec.actuator is not None:
        force = rec.actuator["force"]
        out["measured_force_above_max"] = int(
            (force > limits.max_force_n * (1.0 + limits.measured_force_margin)).any(axis=1).sum())
        out["actuator_fault_samples"] = int((rec.actuator["faults"] != 0).any(axis=1).sum())
    out["total"] = sum(v for k, v in out.items() if k != "actuator_fault_samples")
    return out


def measured_force(rec: Recording, limits: Limits) -> dict | None:
    """The tension the wearer felt: largest per side and samples above the limit + margin."""
    if rec.actuator is None:
        return None
    force = rec.actuator["force"]
    bound = limits.max_force_n * (1.0 + limits.measured_force_margin)
    return {"unit": "N", "max_force_n": limits.max_force_n, "bound_n": bound,
            **{f"{side}_max_n": float(np.nanmax(force[:, i], initial=0.0))
               for i, side in enumerate(SIDES)},
            "samples_above_bound": int((force > bound).any(axis=1).sum()),
            "samples": int(force.shape[0])}


FAULT_DEADLINE_S = 1.0  # a fault active this long must have brought the force command to zero


def _episodes(t: np.ndarray, active: np.ndarray) -> list[tuple[int, int | None]]:
    """(first active index, first index after it that is inactive or None) per active run."""
    previous = np.concatenate([[False], active[:-1]])
    starts = np.flatnonzero(active & ~previous)
    ends = np.flatnonzero(~active & previous)
    out = []
    for start in starts:
        later = ends[ends > start]
        out.append((int(start), int(later[0]) if later.size else None))
    return out


def fault_episodes(rec: Recording) -> list[dict]:
    """Spans during which something required the assistance to drop: onset, clear, reason.

    Controller watchdog not OK; assistance fading out or disabled after having been enabled;
    actuator fault flags set. ``cleared_after_s`` is None while the fault lasts to the end.
    """
    found = []

    def add(series: Series, active: np.ndarray, reason, keep=lambda i: True) -> None:
        t = series["t"]
        for start, end in _episodes(t, active):
            if keep(start):
                found.append({"onset_s": float(t[start]), "reason": reason(start),
                              "cleared_after_s": None if end is None
                              else float(t[end] - t[start])})

    if rec.controller is not None:
        watchdog = rec.controller["watchdog"]
        add(rec.controller, watchdog != 0, lambda i: f"controller watchdog {watchdog[i]}")
    if rec.command is not None:
        state = rec.command["state"]
        # FADING_OUT (3) or DISABLED (0), counted when it follows ENABLED (2).
        add(rec.command, (state == 3) | (state == 0), lambda i: "assistance fading out",
            keep=lambda i: i > 0 and state[i - 1] == 2)
    if rec.actuator is not None:
        faults = rec.actuator["faults"]
        add(rec.actuator, (faults != 0).any(axis=1),
            lambda i: f"actuator fault flags {faults[i].tolist()}")
    return sorted(found, key=lambda e: e["onset_s"])


def time_to_zero(t: np.ndarray, magnitude: np.ndarray, onset_s: float, threshold: float,
                 until_s: float = math.inf) -> float | None:
    """Seconds from ``onset_s`` until ``magnitude`` is at or below ``threshold`` for good.

    "For good" means it stays there for every later sample before ``until_s`` (a walking
    profile crosses zero on its own every stride, so the first crossing proves nothing). None
    when it is above the threshold at the last sample of the span, or there are no samples.
    """
    span = np.flatnonzero((t >= onset_s) & (t < until_s))
    if span.size == 0 or magnitude[span[-1]] > threshold:
        return None
    above = span[magnitude[span] > threshold]
    settled = span[0] if above.size == 0 else above[-1] + 1
    return float(t[settled] - onset_s)


def force_command_magnitude(rec: Recording) -> tuple[np.ndarray, np.ndarray] | None:
    """(t, largest force the loop is told to produce): controller reference, else desired force."""
    series, key = (rec.controller, "reference") if rec.controller is not None else (
        rec.command, "force")
    if series is None:
        return None
    return series["t"], np.nan_to_num(np.abs(series[key]), nan=np.inf).max(axis=1)


def fault_responses(rec: Recording, zero_force_n: float = 0.5, stopped_rad_s: float = 0.05,
                    released_n: float = 3.0) -> list[dict]:
    """Per fault episode: times until the force command, motor command and tension are ~0.

    ``tension_released_after_s``: until the measured tension is below ``released_n``.

    Only the time while the fault is active counts: a fault that clears before the force has
    faded out has ``force_zero_after_s`` None and ``cleared_after_s`` shorter than the fade.
    Episodes that begin before the first force command (graph still starting) are left out.
    """
    force = force_command_magnitude(rec)
    first_command_s = -math.inf if force is None else float(force[0][0])
    speed = None
    if rec.motor is not None:
        speed = np.where(rec.motor["enabled"],
                         np.nan_to_num(np.abs(rec.motor["velocity"]), nan=np.inf).max(axis=1),
                         0.0)
    responses = []
    for episode in fault_episodes(rec):
        onset = episode["onset_s"]
        if onset < first_command_s:
            continue  # the recorder started before the controller: start-up, not a fault
        until = math.inf if episode["cleared_after_s"] is None else (
            onset + episode["cleared_after_s"])
        episode["force_zero_after_s"] = None if force is None else time_to_zero(
            *force, onset, zero_force_n, until)
        episode["motor_stopped_after_s"] = None if speed is None else time_to_zero(
            rec.motor["t"], speed, onset, stopped_rad_s, until)
        episode["tension_released_after_s"] = None if rec.actuator is None else time_to_zero(
            rec.actuator["t"], np.nan_to_num(rec.actuator["force"], nan=np.inf).max(axis=1),
            onset, released_n, until)
        lasted = (episode["cleared_after_s"] if episode["cleared_after_s"] is not None
                  else float(force[0][-1] - onset) if force is not None else 0.0)
        episode["not_zeroed"] = episode["force_zero_after_s"] is None and (
            lasted >= FAULT_DEADLINE_S)
        responses.append(episode)
    return responses


def _percentiles(values: np.ndarray) -> dict | None:
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return None
    return {"mean": float(values.mean()), "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)), "max": float(values.max())}


def summarise(rec: Recording, limits: Limits) -> dict:
    """Every metric of a recording as one JSON-ready dictionary."""
    responses = fault_responses(rec)
    zero_times = [r["force_zero_after_s"] for r in responses if r["force_zero_after_s"] is not None]
    last_t = max(float(s["t"][-1]) for s in (rec.joints, rec.estimate, rec.command, rec.motor,
                                             rec.actuator, rec.controller) if s is not None)
    return {
        "recording": str(rec.path),
        "duration_s": last_t,
        "message_counts": rec.counts,
        "estimate_vs_measured_moment": estimate_accuracy(rec),
        "force_tracking": force_tracking(rec),
        "measured_force": measured_force(rec, limits),
        "limits": asdict(limits),
        "limit_violations": limit_violations(rec, limits),
        "rate_limits": rate_checks(rec, limits),
        "faults": {
            "episodes": responses,
            "max_force_zero_after_s": max(zero_times, default=None),
            "deadline_s": FAULT_DEADLINE_S,
            "not_zeroed": sum(r["not_zeroed"] for r in responses),
        },
        "inference_latency_s": (None if rec.estimate is None
                                else _percentiles(rec.estimate["latency"])),
        "controller_loop_period_s": (None if rec.controller is None
                                     else _percentiles(rec.controller["loop_period"])),
    }


# --- plots ----------------------------------------------------------------------------------

def _save(fig, path: Path) -> Path:
    from k2muse_dataset.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def write_plots(rec: Recording, out_dir: Path) -> list[Path]:
    """Estimate vs measured moment, force tracking, motor commands: one PNG each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if rec.joints is not None:
        fig, axes = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
        for side, ax in enumerate(axes):
            ax.plot(rec.joints["t"], rec.joints["effort"][:, side], "k-", lw=1,
                    label="measured (replayed)")
            if rec.estimate is not None:
                valid = rec.estimate["valid"][:, side]
                ax.plot(rec.estimate["t"][valid], rec.estimate["moment"][valid, side], "C1-",
                        lw=1, label="estimate")
            ax.set_ylabel(f"{SIDES[side]} hip moment\n[N·m/kg, extension +]")
            ax.legend(loc="upper right")
        axes[-1].set_xlabel("time [s]")
        fig.suptitle("Hip-moment estimate vs measured moment")
        written.append(_save(fig, out_dir / "estimate_vs_measured.png"))
        plt.close(fig)
    if rec.actuator is not None:
        fig, axes = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
        for side, ax in enumerate(axes):
            if rec.command is not None:
                ax.plot(rec.command["t"], rec.command["force"][:, side], "C0-", lw=1,
                        label="desired (assistance)")
            if rec.controller is not None:
                ax.plot(rec.controller["t"], rec.controller["reference"][:, side], "C2--", lw=1,
                        label="reference (after watchdog)")
            ax.plot(rec.actuator["t"], rec.actuator["force"][:, side], "k-", lw=1,
                    label="measured")
            ax.set_ylabel(f"{SIDES[side]} cable force [N]")
            ax.legend(loc="upper right")
        axes[-1].set_xlabel("time [s]")
        fig.suptitle("Cable force tracking")
        written.append(_save(fig, out_dir / "force_tracking.png"))
        plt.close(fig)
    if rec.motor is not None:
        fig, axes = plt.subplots(3, 1, sharex=True, figsize=(10, 7))
        for side in range(2):
            axes[side].plot(rec.motor["t"], rec.motor["velocity"][:, side], "C0-", lw=1,
                            label="command")
            if rec.actuator is not None:
                axes[side].plot(rec.actuator["t"], rec.actuator["motor_velocity"][:, side], "k-",
                                lw=0.8, label="measured")
            axes[side].set_ylabel(f"{SIDES[side]} motor\n[rad/s]")
            axes[side].legend(loc="upper right")
        axes[2].step(rec.motor["t"], rec.motor["enabled"].astype(int), where="post",
                     label="enabled")
        if rec.controller is not None:
            axes[2].step(rec.controller["t"], rec.controller["watchdog"], where="post",
                         label="watchdog code")
            axes[2].plot(rec.controller["t"], rec.controller["output_scale"], label="output scale")
        axes[2].legend(loc="upper right")
        axes[2].set_xlabel("time [s]")
        fig.suptitle("Motor velocity commands")
        written.append(_save(fig, out_dir / "motor_commands.png"))
        plt.close(fig)
    return written


def analyze(bag: str | Path, out_dir: str | Path, limits: Limits | None = None,
            joint_names: Sequence[str] = DEFAULT_JOINT_NAMES) -> dict:
    """Write ``metrics.json`` and the plots for ``bag`` into ``out_dir``; return the metrics."""
    from k2muse_dataset.atomic import write_text_atomic

    limits = limits or default_limits()
    out_dir = Path(out_dir)
    rec = load_recording(bag, joint_names)
    metrics = summarise(rec, limits)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics["plots"] = [p.name for p in write_plots(rec, out_dir)]
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def headline(metrics: dict) -> str:
    """A few lines with the figures that matter, for the terminal."""
    lines = []
    accuracy = (metrics["estimate_vs_measured_moment"] or {}).get("both")
    if accuracy:
        r2 = "n/a" if accuracy["r2"] is None else f"{accuracy['r2']:.3f}"
        lines.append(f"estimate RMSE {accuracy['rmse']:.3f} N·m/kg, R² {r2}")
    tracking = (metrics["force_tracking"] or {}).get("actuator_reference", {})
    for side in SIDES:
        if tracking.get(side):
            lines.append(f"{side} force tracking RMSE {tracking[side]['rmse_n']:.2f} N, "
                         f"max {tracking[side]['max_abs_error_n']:.2f} N")
    felt = metrics.get("measured_force")
    if felt:
        lines.append(f"measured cable tension max {felt['left_max_n']:.1f} / "
                     f"{felt['right_max_n']:.1f} N (limit {felt['max_force_n']:g} N), "
                     f"{felt['samples_above_bound']} samples above {felt['bound_n']:g} N")
    rates = metrics["rate_limits"]
    lines.append(f"limit violations {metrics['limit_violations']['total']}; "
                 f"{rates['steps_over']} steps faster than the force-rate/acceleration limits "
                 f"(allowing {rates['stamp_jitter_s'] * 1e3:g} ms stamp jitter)")
    faults = metrics["faults"]
    if faults["episodes"]:
        worst = faults["max_force_zero_after_s"]
        within = "n/a" if worst is None else f"{worst:.3f} s"
        never = faults["not_zeroed"]
        lines.append(f"{len(faults['episodes'])} fault episodes, force at zero within {within}"
                     + (f", {never} NOT brought to zero" if never else ""))
    return "\n".join(lines)


LIMIT_OPTIONS = ("max_force_n", "max_force_rate_n_per_s", "max_motor_velocity_rad_s",
                 "max_motor_accel_rad_s2")


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``exo-analyze``."""
    parser = argparse.ArgumentParser(prog="exo-analyze", description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="bag folder (or .mcap file) from topic_recorder")
    parser.add_argument("-o", "--output", type=Path,
                        help="folder for metrics.json and plots (default: <bag>_analysis)")
    parser.add_argument("--force", action="store_true",
                        help="replace metrics.json and plots already in the output folder")
    parser.add_argument("--joint-names", nargs=2, default=list(DEFAULT_JOINT_NAMES),
                        metavar=("LEFT", "RIGHT"), help="JointState names of the hip joints")
    parser.add_argument("--params", type=Path, action="append", default=[],
                        help="ROS 2 parameter YAML the graph ran with (repeatable; limits are "
                             "read from the assistance_profile, admittance_controller and "
                             "simulated_actuator sections)")
    for name in LIMIT_OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=float,
                            help="override this limit (default: the nodes' configured value)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``exo-analyze``."""
    args = build_parser().parse_args(argv)
    out_dir = args.output or args.bag.with_name(args.bag.name + "_analysis")
    if (out_dir / "metrics.json").exists() and not args.force:
        print(f"exo-analyze: {out_dir / 'metrics.json'} exists; use --force to replace it",
              file=sys.stderr)
        return 2
    overrides = {n: getattr(args, n) for n in LIMIT_OPTIONS if getattr(args, n) is not None}
    if any(not (math.isfinite(v) and v > 0) for v in overrides.values()):
        print("exo-analyze: limits must be positive numbers", file=sys.stderr)
        return 2

    def run() -> None:
        limits = limits_from_params_files(args.params) if args.params else default_limits()
        metrics = analyze(args.bag, out_dir, replace(limits, **overrides), args.joint_names)
        print(headline(metrics))
        print(f"metrics and plots in {out_dir}")

    return run_command("exo-analyze", run)  # AnalysisError is a ValueError


if __name__ == "__main__":
    sys.exit(main())
