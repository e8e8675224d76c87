"""Benchmark of the TCN hip-moment estimator (prints its figures; no asserts).

1. Training time for one subject x 3 modes x 5 folds with the default config (config/tcn.yaml
   values) on generated data of K2MUSE size per subject: 3 speeds x 5 trials per mode, 30 s
   each (goal: under 5 minutes on 2 CPU cores).
2. ONNX Runtime single-window latency of a 5-model ensemble (the five mode models averaged, as
   at run time): p50/p99 over many windows, one thread per session (goal: p99 under 1 ms).

Usage: .venv/bin/python bench/bench_tcn.py [--duration 30] [--threads 2] [--skip-training]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release
from k2muse_learning.artifacts import load_manifest, model_file
from k2muse_learning.export import OnnxRuntimeRunner
from k2muse_learning.report import single_window_latency_ms
from k2muse_learning.tcn_demo import gait_like_windows, write_demo_model_folder
from k2muse_learning.training import TrainingConfig, count_folds, results_markdown, train_all
from k2muse_learning.windows import load_legs

MODES = ["LG_0", "AS_5", "DS_5"]
ENSEMBLE = ["LG_0", "AS_5", "AS_10", "DS_5", "DS_10"]


def bench_training(work: Path, duration_s: float, threads: int) -> None:
    """Generate one subject of K2MUSE size and time train_all with the default config."""
    started = time.perf_counter()
    generate_release(work / "release", participants=["P01"], mode_keys=MODES,
                     speeds=[0.5, 1.0, 1.5], trials=5, duration_s=duration_s, seed=7)
    process_release(work / "release", work / "out", jobs=threads)
    print(f"generated + processed 1 subject x {len(MODES)} modes x 3 speeds x 5 trials x "
          f"{duration_s:g} s in {time.perf_counter() - started:.1f} s")
    config = TrainingConfig(threads=threads)
    legs = load_legs(work / "out" / "trials", config.input_names)
    print(f"{len(legs)} leg series, {count_folds(legs, config)} fold trainings, "
          f"torch threads {threads}")
    started = time.perf_counter()
    results = train_all(legs, config)
    elapsed = time.perf_counter() - started
    print(results_markdown(results))
    print(f"TRAINING: {elapsed:.1f} s for 1 subject x {len(results)} modes x 5 folds "
          f"(goal < 300 s)")


def bench_ensemble(work: Path, repeats: int) -> None:
    """Time the five default-size mode models on one window each, sequentially."""
    config = TrainingConfig().tcn_config
    folder = write_demo_model_folder(work / "ensemble", mode_keys=ENSEMBLE, config=config)
    manifest = load_manifest(folder)
    runners = [OnnxRuntimeRunner(model_file(folder, manifest, key, "onnx_sim"), threads=1)
               for key in ENSEMBLE]
    windows = gait_like_windows(256, manifest["window_length"])

    def ensemble(window: np.ndarray) -> np.ndarray:
        return np.mean([runner(window) for runner in runners], axis=0)

    latency = single_window_latency_ms(ensemble, windows, repeats)
    single = single_window_latency_ms(runners[0], windows, repeats)
    print(f"architecture {config.to_dict()}")
    print(f"ONNX Runtime single model : p50 {np.percentile(single, 50):.3f} ms, "
          f"p99 {np.percentile(single, 99):.3f} ms")
    print(f"ENSEMBLE of {len(runners)} (sequential): p50 {np.percentile(latency, 50):.3f} ms, "
          f"p99 {np.percentile(latency, 99):.3f} ms, max {latency.max():.3f} ms "
          f"over {repeats} windows (goal p99 < 1 ms)")


def main() -> None:
    """Run both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per trial")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument("--repeats", type=int, default=5000, help="latency samples")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_tcn_") as tmp:
        bench_ensemble(Path(tmp), args.repeats)
        if not args.skip_training:
            bench_training(Path(tmp), args.duration, args.threads)


if __name__ == "__main__":
    main()
