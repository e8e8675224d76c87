"""Real-data accuracy of the TCN hip-moment estimator: leave-one-file-out on public gait c3d.

Imports every c3d file under ../shared/testdata/c3d (public test files of three gait-lab
projects: Vicon Plug-in Gait / CGM2.4, 50-100 Hz) with `k2muse import` (metadata the files do
not hold stays unknown), trains the default TCN on all files but one with the project's
training code (k2muse_learning.training.fit_tcn, early stopping on the training files only),
and scores the held-out file against the per-phase average-curve baseline fitted on the same
training files. Prints per-file and pooled RMSE (N·m/kg) and R² (all held-out samples
together), the data size and the published anchor. No asserts: the figures are the output.

Usage: .venv/bin/python bench/bench_real_c3d.py [--c3d-dir ../shared/testdata/c3d]
       [--threads 2] [--epochs 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from k2muse_dataset.importer import import_c3d_files
from k2muse_learning.training import (
    AverageCurveBaseline,
    TrainingConfig,
    fit_tcn,
    predict_leg,
    regression_metrics,
)
from k2muse_learning.windows import load_legs

SHARED_C3D = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "c3d"
ANCHOR = ("Molinaro et al. 2024 (Science Robotics): RMSE 0.142 N·m/kg, R² 0.84 — 35 "
          "conditions, 200 Hz hip angle/velocity + pelvis/thigh IMUs, many subjects, "
          "hours of data")


def leave_one_file_out(legs, config: TrainingConfig) -> tuple[list[dict], dict]:
    """Train without each file in turn; return per-file rows and pooled metrics."""
    files = sorted({leg.trial_id for leg in legs})
    rows, pooled = [], {"measured": [], "tcn": [], "baseline": []}
    for fold, held_out in enumerate(files):
        test = [leg for leg in legs if leg.trial_id == held_out]
        train = [leg for leg in legs if leg.trial_id != held_out]
        started = time.perf_counter()
        model, epochs = fit_tcn(train, config, seed=config.seed + fold)
        baseline = AverageCurveBaseline().fit(train)
        measured, tcn, reference = [], [], []
        for leg in test:
            estimate = predict_leg(model, leg, config.window_length)
            curve = baseline.predict_leg(leg)
            keep = leg.target_mask & np.isfinite(estimate) & np.isfinite(curve)
            measured.append(leg.moment[keep])
            tcn.append(estimate[keep])
            reference.append(curve[keep])
        measured, tcn, reference = (np.concatenate(a) for a in (measured, tcn, reference))
        for key, values in (("measured", measured), ("tcn", tcn), ("baseline", reference)):
            pooled[key].append(values)
        ours, theirs = regression_metrics(measured, tcn), regression_metrics(measured, reference)
        rows.append({"file": Path(held_out).stem, "samples": int(measured.size),
                     "rmse": ours["rmse_nm_per_kg"], "r2": ours["r2"],
                     "baseline_rmse": theirs["rmse_nm_per_kg"], "baseline_r2": theirs["r2"],
                     "epochs": epochs, "seconds": time.perf_counter() - started})
    measured, tcn, reference = (np.concatenate(pooled[k]) for k in ("measured", "tcn",
                                                                     "baseline"))
    return rows, {"samples": int(measured.size), "tcn": regression_metrics(measured, tcn),
                  "baseline": regression_metrics(measured, reference)}


def main() -> None:
    """Import, train leave-one-file-out, print the table and the pooled figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c3d-dir", type=Path, default=SHARED_C3D)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--epochs", type=int, default=TrainingConfig.epochs)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_real_c3d_") as tmp:
        report = import_c3d_files(args.c3d_dir, Path(tmp))
        imported = [r for r in report["rows"] if r["status"] == "processed"]
        config = TrainingConfig(threads=args.threads, epochs=args.epochs, seed=args.seed)
        legs = load_legs(Path(tmp) / "trials", config.input_names)
    # one fold per file, whatever the participant names say
    legs = [dataclasses.replace(leg, participant=leg.trial_id) for leg in legs]
    strides = sum(len(leg.heel_strikes) - 1 for leg in legs if len(leg.heel_strikes) > 1)
    target_s = sum(int(leg.target_mask.sum()) for leg in legs) / legs[0].sample_rate_hz
    print(f"imported {len(imported)}/{len(report['rows'])} c3d files from {args.c3d_dir} "
          f"in {time.perf_counter() - started:.1f} s; {len(legs)} legs, ~{strides} accepted "
          f"strides, {target_s:.1f} s of hip-moment targets (both legs)")
    rows, pooled = leave_one_file_out(legs, config)
    print(f"\n{'held-out file':58s} {'n':>5s} {'RMSE':>7s} {'R²':>6s} {'base RMSE':>9s} "
          f"{'base R²':>7s} {'epochs':>6s} {'s':>5s}")
    for row in rows:
        print(f"{row['file'][:58]:58s} {row['samples']:5d} {row['rmse']:7.3f} {row['r2']:6.2f} "
              f"{row['baseline_rmse']:9.3f} {row['baseline_r2']:7.2f} {row['epochs']:6d} "
              f"{row['seconds']:5.1f}")
    tcn, base = pooled["tcn"], pooled["baseline"]
    print(f"\nPOOLED over {pooled['samples']} held-out samples: TCN RMSE "
          f"{tcn['rmse_nm_per_kg']:.3f} N·m/kg, R² {tcn['r2']:.2f}; average-curve baseline "
          f"RMSE {base['rmse_nm_per_kg']:.3f} N·m/kg, R² {base['r2']:.2f}")
    print(f"anchor: {ANCHOR}")
    print(f"CAVEAT: {len(imported)} short trials (2-5 s, 0-2 accepted strides per side) from "
          "different labs, subjects and models; 100 Hz, hip angle and velocity only; strides "
          "touching a gap are not scored. The spread between files is the result, not the "
          "decimals: this is far too little data to compare with the anchor.")
    print(f"total {time.perf_counter() - started:.0f} s on {args.threads} torch threads")


if __name__ == "__main__":
    main()
