"""The replay graph judged by the force the wearer feels, idle and beside two busy loops.

Generates a small dataset, trains the demo's short TCN on two participants (exo_bringup.demo),
then replays a held-out participant's trial through the whole graph
(exo_control.graph_processes.run_graph: every node its own process over DDS, parameter files
from exo_control.graph) twice in one run: on the machine
as it is, and with two busy-loop processes beside it (on a 2-core machine that takes both cores
away whenever the graph's processes are not running). For each it prints:

- measured cable tension: the largest per side against max_force_n and the samples above
  max_force_n + 5 %;
- force tracking RMSE (measured tension vs the reference the actuator's fast loop tracked);
- estimates received / joint states sent (every sample of the trial; the replay publishes each
  one), and estimate latency p50/p99 (recorder receive time minus the stamp of the joint state
  the estimate was computed from);
- fault episodes while the trial played (none is injected here, so every one is a failure).

Targets (docs/benchmarks.md): loaded, zero samples above max_force_n + 5 %, tracking RMSE at
most 2x the idle figure, at least 95 % of estimates, no fault episode.

    .venv/bin/python bench/bench_control_under_load.py                 # 60 s per condition
    .venv/bin/python bench/bench_control_under_load.py --duration-s 30 --json results/load.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def busy_loops(count: int) -> list[subprocess.Popen]:
    """``count`` Python processes spinning at 100 % CPU until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def estimate_latencies_s(bag: Path) -> np.ndarray:
    """Recorder receive time minus header stamp of every estimate in the bag, s."""
    from exo_control.recorder import exo_typestore
    from rosbags.highlevel import AnyReader

    latencies = []
    with AnyReader([bag], default_typestore=exo_typestore()) as reader:
        wanted = [c for c in reader.connections if c.topic == "/hip_moment/estimate"]
        for connection, receive_ns, raw in reader.messages(connections=wanted):
            stamp = reader.deserialize(raw, connection.msgtype).header.stamp
            latencies.append((receive_ns - stamp.sec * 1_000_000_000 - stamp.nanosec) * 1e-9)
    return np.array(latencies)


def figures(metrics: dict, bag: Path, joints_sent: int) -> dict:
    """The benchmark's figures from exo-analyze metrics of one run."""
    from exo_control.analyze import load_recording

    joints_t = load_recording(bag).joints["t"]
    counts = metrics["message_counts"]
    felt = metrics["measured_force"]
    tracking = metrics["force_tracking"]["actuator_reference"]
    latency = estimate_latencies_s(bag)
    episodes = [e for e in metrics["faults"]["episodes"]  # while the trial played
                if joints_t[0] <= e["onset_s"] <= joints_t[-1]]
    return {
        "max_force_n": felt["max_force_n"],
        "measured_max_n": [felt["left_max_n"], felt["right_max_n"]],
        "samples_above_max_plus_5pct": felt["samples_above_bound"],
        "tracking_rmse_n": [tracking[side]["rmse_n"] for side in ("left", "right")],
        "estimates_received": counts.get("/hip_moment/estimate", 0),
        "joint_states_sent": joints_sent,
        "joint_states_recorded": counts.get("/joint_states", 0),
        "estimate_latency_ms": {"p50": float(np.percentile(latency, 50) * 1e3),
                                "p99": float(np.percentile(latency, 99) * 1e3)},
        "fault_episodes": [{"onset_s": round(e["onset_s"], 3), "reason": e["reason"]}
                           for e in episodes],
    }


def run_condition(name: str, folder: Path, trial: Path, model: Path, body_mass_kg: float,
                  samples: int, busy: int) -> dict:
    """One replay through the graph with ``busy`` busy loops beside it."""
    from exo_control.analyze import analyze, limits_from_params_files
    from exo_control.graph_processes import config_files, run_graph

    hogs = busy_loops(busy)
    try:
        bag = run_graph(trial, model, folder / f"{name}_bag", folder / f"{name}_logs",
                        body_mass_kg)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    metrics = analyze(bag, folder / f"{name}_analysis", limits_from_params_files(config_files()))
    return figures(metrics, bag, samples)


def print_row(name: str, f: dict) -> None:
    """One condition's figures, one line each."""
    print(f"== {name}")
    print(f"  measured tension max {f['measured_max_n'][0]:.1f} / {f['measured_max_n'][1]:.1f} N"
          f" (max_force_n {f['max_force_n']:g} N); samples above +5 %:"
          f" {f['samples_above_max_plus_5pct']}")
    print(f"  force tracking RMSE {f['tracking_rmse_n'][0]:.2f} / {f['tracking_rmse_n'][1]:.2f} N")
    share = f["estimates_received"] / max(1, f["joint_states_sent"])
    latency = f["estimate_latency_ms"]
    print(f"  estimates {f['estimates_received']} / joint states {f['joint_states_sent']}"
          f" ({share:.1%}; {f['joint_states_recorded']} recorded); estimate latency"
          f" p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms")
    print(f"  fault episodes: {len(f['fault_episodes'])}"
          + "".join(f"\n    {e['onset_s']:.3f} s {e['reason']}" for e in f["fault_episodes"]))


def main() -> int:
    """Idle and loaded runs, then the targets."""
    from exo_bringup.demo import DemoSettings, make_dataset, replay_trial, train_model
    from k2muse_dataset.trial_h5 import read_trial_h5

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=60.0,
                        help="length of the replayed trial, s (default 60)")
    parser.add_argument("--busy", type=int, default=2, help="busy loops in the loaded run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    settings = DemoSettings(duration_s=args.duration_s)
    with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp:
        folder = Path(tmp)
        processed = make_dataset(folder, settings)
        model, _ = train_model(processed, folder, settings)
        trial = replay_trial(processed, settings)
        replayed = read_trial_h5(trial, load_emg=False, load_aus=False)
        results = {name: run_condition(name, folder, trial, model, replayed.body_mass_kg,
                                       replayed.time_s.size, busy)
                   for name, busy in (("idle", 0), (f"{args.busy} busy loops", args.busy))}
    for name, f in results.items():
        print_row(name, f)
    idle, loaded = results.values()
    targets = {
        "no measured tension above max_force_n + 5 %": loaded["samples_above_max_plus_5pct"] == 0,
        "tracking RMSE <= 2x idle": max(loaded["tracking_rmse_n"])
        <= 2.0 * max(idle["tracking_rmse_n"]),
        ">= 95 % of estimates": loaded["estimates_received"]
        >= 0.95 * loaded["joint_states_sent"],
        "no fault episode": not loaded["fault_episodes"],
    }
    print("== targets (loaded run)")
    for target, met in targets.items():
        print(f"  {'met    ' if met else 'NOT met'} {target}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, "targets": targets}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
