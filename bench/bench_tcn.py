"""Benchmark of the TCN hip-moment estimator (prints its figures; no asserts).

1. Training time for one subject x 3 modes x 5 folds with the default config (config/tcn.yaml
   values) on generated data of K2MUSE size per subject: 3 speeds x 5 trials per mode, 30 s
   each (goal: under 5 minutes on 2 CPU cores); then the same folds one after another with one
   job's torch threads, and --jobs at a time through joblib (goal: >= 1.7x faster on 2 cores),
   and the full release projected from the per-fold cost onto one and several 16-core
   machines.
2. Per-sample latency of a 5-model ensemble, side by side in one run: windowed (five ONNX
   Runtime sessions, each on the whole window), fused windowed (one graph, whole window) and
   fused streaming (one graph, one new sample per call); goal: streaming p99 <= 0.1 ms and
   >= 5x faster than the windowed ensemble.

Usage: .venv/bin/python bench/bench_tcn.py [--duration 30] [--threads 2] [--jobs 2]
       [--epochs N] [--rounds 1] [--skip-training] [--skip-latency] [--samples 5000]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release
from k2muse_inference.backends import BackendOptions, FusedStreamingBackend, OnnxRuntimeBackend
from k2muse_inference.ensemble import Ensemble
from k2muse_inference.model import Expectations, load_model_spec
from k2muse_learning.parallel import threads_per_job
from k2muse_learning.tcn_demo import gait_like_windows, write_demo_model_folder
from k2muse_learning.training import TrainingConfig, count_folds, results_markdown, train_all
from k2muse_learning.windows import load_legs

MODES = ["LG_0", "AS_5", "DS_5"]
ENSEMBLE = ["LG_0", "AS_5", "AS_10", "DS_5", "DS_10"]


RELEASE_FOLDS = 42 * 3 * 5  # participants x modes x folds of the full K2MUSE release


def bench_training(work: Path, duration_s: float, threads: int, jobs: int,
                   epochs: int | None, rounds: int) -> None:
    """Time train_all on one generated subject of K2MUSE size: sequential, then in parallel.

    Every run trains the same folds with the same seeds: one after another with ``threads``
    torch threads (as before --jobs), one after another with ``threads // jobs`` threads, and
    ``jobs`` at a time through joblib with ``threads // jobs`` threads each. The speedup over
    the first is what --jobs gains on this machine; over the second, what running folds side
    by side gains once torch's own threads are set aside. The per-fold cost of the parallel
    run projects the full release onto bigger machines.
    """
    started = time.perf_counter()
    generate_release(work / "release", participants=["P01"], mode_keys=MODES,
                     speeds=[0.5, 1.0, 1.5], trials=5, duration_s=duration_s, seed=7)
    process_release(work / "release", work / "out", jobs=threads)
    print(f"generated + processed 1 subject x {len(MODES)} modes x 3 speeds x 5 trials x "
          f"{duration_s:g} s in {time.perf_counter() - started:.1f} s")
    config = TrainingConfig(threads=threads)
    if epochs is not None:
        config = TrainingConfig(threads=threads, epochs=epochs, patience=epochs)
    legs = load_legs(work / "out" / "trials", config.input_names)
    folds = count_folds(legs, config)
    print(f"{len(legs)} leg series, {folds} fold trainings, epochs <= {config.epochs}")
    per_job = threads_per_job(threads, jobs)
    # Three ways to spend the cores on the same folds: one after another with all the torch
    # threads (before --jobs), one after another with one job's threads (the per-fold cost the
    # jobs pay), and --jobs at a time. Taking turns, so all see similar load over time.
    before = f"sequential, {threads} torch threads"
    parallel = f"--jobs {jobs}, {per_job} thread(s) each"
    arrangements = {before: (1, threads), f"sequential, {per_job} torch thread(s)": (1, per_job),
                    parallel: (jobs, threads)}
    if per_job == threads:  # one job already has every thread: the middle run adds nothing
        del arrangements[f"sequential, {per_job} torch thread(s)"]
    wall_s = {name: [] for name in arrangements}
    fold_s = []
    for round_index in range(rounds):
        figures = []
        for name, (run_jobs, run_threads) in arrangements.items():
            load = os.getloadavg()[0]
            started = time.perf_counter()
            results = train_all(legs, replace(config, threads=run_threads), show_progress=False,
                                jobs=run_jobs)
            wall_s[name].append(time.perf_counter() - started)
            if name == parallel:
                fold_s += [f.train_seconds for mode in results for f in mode.folds]
            figures.append(f"{name} {wall_s[name][-1]:.1f} s (load {load:.1f})")
        print(f"round {round_index + 1}: " + "; ".join(figures), flush=True)
    print(results_markdown(results))
    print(f"TRAINING {before}: {np.median(wall_s[before]):.1f} s median of {rounds} (goal < 300 s "
          "for the default config)")
    for name, values in wall_s.items():
        if name != parallel:
            speedup = sum(values) / sum(wall_s[parallel])
            print(f"SPEEDUP of --jobs {jobs} over {name}: {speedup:.2f}x over all rounds on "
                  f"{os.cpu_count()} cores (goal >= 1.7x on 2; other work on the machine skews it)")
    mean_fold = float(np.mean(fold_s))
    print(f"per-fold training cost with {per_job} thread(s), {jobs} at once: mean "
          f"{mean_fold:.1f} s, max {max(fold_s):.1f} s")
    for machines in (1, 4, 16):
        cores = 16 * machines
        waves = math.ceil(RELEASE_FOLDS / cores)
        print(f"projected full release ({RELEASE_FOLDS} folds, 1 thread per fold) on "
              f"{machines} x 16-core machine(s): {waves} waves x {mean_fold:.0f} s = "
              f"{waves * mean_fold / 60:.1f} min (epochs as in this run)")


BLOCK_SAMPLES = 250  # consecutive samples each ensemble path runs before the next one's turn


class WindowedOnly:
    """A backend seen through its windowed call only (the fused graph without its history)."""

    def __init__(self, backend):
        self.name = f"{backend.name} (windowed)"
        self.predict = backend.predict


def bench_ensemble(work: Path, samples: int) -> None:
    """Per-sample latency of the 5-model ensemble: three paths timed side by side.

    One leg's joint states at the model rate, so every window continues the previous one.
    The three paths take turns in blocks of ``BLOCK_SAMPLES`` consecutive samples (the same
    load for all, and each path runs with its own data in cache as a node would): today's five
    ONNX Runtime sessions on the window, the fused graph on the window, and the fused graph
    stepped by the newest sample (the estimator's default). Each call goes through the
    estimator's Ensemble (averaging and checks included), one ONNX Runtime thread.
    """
    config = TrainingConfig().tcn_config
    folder = write_demo_model_folder(work / "ensemble", mode_keys=ENSEMBLE, config=config)
    spec = load_model_spec(folder, Expectations())
    options = BackendOptions(onnx_threads=1)
    streaming = FusedStreamingBackend(spec.ensemble, options)
    paths = {
        "windowed, 5 sessions": Ensemble(OnnxRuntimeBackend(spec.ensemble, options)),
        "fused windowed, 1 session": Ensemble(WindowedOnly(streaming)),
        "fused streaming, 1 session": Ensemble(streaming),
    }
    window = spec.window_length
    sequence = gait_like_windows(1, samples + window, seed=3)[0]
    timings = {name: [] for name in paths}
    estimates = {name: [] for name in paths}
    for block in range(window, window + samples, BLOCK_SAMPLES):
        ends = range(block, min(block + BLOCK_SAMPLES, window + samples))
        for name, ensemble in paths.items():
            for end in ends:
                output = ensemble(sequence[None, :, end - window:end])
                timings[name].append(output.latency_s * 1e3)
                estimates[name].append(output.moments_nm_per_kg[0])
    print(f"architecture {config.to_dict()}, {len(ENSEMBLE)} mode models, window {window}, "
          f"{samples} consecutive samples, one thread")
    reference = np.asarray(estimates["windowed, 5 sessions"])
    p99 = {}
    for name, values in timings.items():
        values = np.asarray(values[10:])  # after warm-up
        p99[name] = np.percentile(values, 99)
        error = np.max(np.abs(np.asarray(estimates[name]) - reference))
        print(f"{name:28s}: p50 {np.percentile(values, 50):.4f} ms, p99 {p99[name]:.4f} ms, "
              f"max {values.max():.3f} ms; max |diff| vs windowed {error:.2e} N*m/kg")
    stream = paths["fused streaming, 1 session"]
    print(f"streaming: {stream.steps} steps, {stream.primes} primes")
    ratio = p99["windowed, 5 sessions"] / p99["fused streaming, 1 session"]
    print(f"ENSEMBLE: fused streaming p99 {p99['fused streaming, 1 session']:.4f} ms "
          f"(goal <= 0.1 ms), {ratio:.1f}x faster than windowed 5 sessions at p99 (goal >= 5x)")


def main() -> None:
    """Run both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per trial")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument("--jobs", type=int, default=2, help="parallel fold trainings")
    parser.add_argument("--epochs", type=int, help="cap epochs (shorter speedup runs)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="sequential/parallel pairs, alternating")
    parser.add_argument("--samples", type=int, default=5000, help="latency samples")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_tcn_") as tmp:
        if not args.skip_latency:
            bench_ensemble(Path(tmp), args.samples)
        if not args.skip_training:
            bench_training(Path(tmp), args.duration, args.threads, args.jobs, args.epochs,
                           args.rounds)


if __name__ == "__main__":
    main()
