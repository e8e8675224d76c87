"""Benchmark: the full baseline sweep on a generated K2MUSE-like dataset (goal < 10 min, 2 cores).

Generates a synthetic release (k2muse_dataset.synth), processes it into trial HDF5 files
(k2muse_dataset.process), extracts features and runs every model, modality and protocol of
config/baselines.yaml; prints wall time per stage and per model, and writes the result tables
and plots to --out. With --jobs N > 1 it then runs the whole sweep again N combinations at a
time (one torch thread each on 2 cores) and prints the speedup over the run one model at a
time (goal >= 1.7x on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release
from k2muse_learning.baselines.dataset import find_trial_files, load_dataset
from k2muse_learning.baselines.outputs import write_outputs
from k2muse_learning.baselines.sweep import SweepResult, load_config, run_sweep
from k2muse_learning.parallel import threads_per_job

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "src" / "k2muse_learning" / "config" / "baselines.yaml"
GOAL_S = 600.0


def rows_agree(first: list[dict], second: list[dict], rtol: float = 1e-5) -> bool:
    """Same rows in the same order, numbers equal up to ``rtol``."""
    if len(first) != len(second):
        return False
    for a, b in zip(first, second, strict=True):
        if a.keys() != b.keys():
            return False
        for key, value in a.items():
            if isinstance(value, float):
                if not np.isclose(value, b[key], rtol=rtol, equal_nan=True):
                    return False
            elif value != b[key]:
                return False
    return True


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=4)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--conditions", nargs="+",
                        default=["Ideal", "Fatigue", "ShiftInitial", "InterDay"])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_baselines")
    args = parser.parse_args()

    config = load_config(args.config, seed=args.seed)
    participants = [f"P{i + 1:02d}" for i in range(args.participants)]
    with tempfile.TemporaryDirectory(prefix="bench_baselines_") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        generate_release(tmp / "release", participants=participants, conditions=args.conditions,
                         mode_keys=["LG_0"], speeds=[1.0], trials=args.trials,
                         duration_s=args.duration_s, seed=args.seed, processed=False)
        process_release(tmp / "release", tmp / "processed", jobs=args.jobs, write_mat=False)
        data_s = time.perf_counter() - start

        sweep_start = time.perf_counter()
        trials, problems = load_dataset(
            find_trial_files(tmp / "processed" / "trials"), config.features,
            participants=config.participants, conditions=config.conditions,
            mode_keys=config.mode_keys, jobs=args.jobs,
        )
        features_s = time.perf_counter() - sweep_start
    rows = sum(len(t.time_s) for t in trials)
    print(f"dataset: {len(participants)} participants x {args.conditions}, {len(trials)} trials "
          f"of {args.duration_s:.0f} s, {rows} feature rows; {len(problems)} unreadable")
    print(f"generate + process release: {data_s:7.1f} s (not part of the sweep)")
    print(f"feature extraction:         {features_s:7.1f} s", flush=True)

    # One model at a time (same splits, same seed), so each model's time prints as it ends.
    result = SweepResult()
    models_s = 0.0
    print(f"\n{'task':15s} {'model':12s} {'fits':>5s} {'fit s':>8s} {'predict s':>10s} "
          f"{'wall s':>8s}", flush=True)
    for task, chosen in config.models.items():
        for model, params in chosen.items():
            single = replace(config, models={task: {model: params}})
            start = time.perf_counter()
            part = run_sweep(single, trials)
            wall = time.perf_counter() - start
            models_s += wall
            result.rows += part.rows
            result.timings += part.timings
            result.confusion.update(part.confusion)
            fits = sum(t["fits"] for t in part.timings)
            fit_s = sum(t["fit_s"] for t in part.timings)
            predict_s = sum(t["predict_s"] for t in part.timings)
            print(f"{task:15s} {model:12s} {fits:5d} {fit_s:8.1f} {predict_s:10.2f} {wall:8.1f}",
                  flush=True)
    write_outputs(config, result, args.out)
    total = features_s + models_s
    print(f"\nsweep (features + all models): {total:.1f} s "
          f"({'within' if total < GOAL_S else 'OVER'} the {GOAL_S:.0f} s goal); "
          f"results in {args.out}")
    if args.jobs > 1:
        start = time.perf_counter()
        parallel = run_sweep(config, trials, jobs=args.jobs)
        parallel_s = time.perf_counter() - start
        same = rows_agree(result.rows, parallel.rows)
        threads = threads_per_job(os.cpu_count() or 1, args.jobs)
        print(f"all models with --jobs {args.jobs} ({threads} torch thread(s) each): "
              f"{parallel_s:.1f} s; one model at a time "
              f"above: {models_s:.1f} s; SPEEDUP {models_s / parallel_s:.2f}x on "
              f"{os.cpu_count()} cores (goal >= 1.7x on 2); "
              f"result rows {'agree' if same else 'DIFFER'} (rtol 1e-5: thread counts change "
              "summation order)")


if __name__ == "__main__":
    main()
