"""k2muse-tcn: train, export and report the TCN hip-moment estimator.

k2muse-tcn train  --data OUT/trials --out models/P01 [--config config/tcn.yaml]
k2muse-tcn export --model models/P01 --out models/P01-trt --tensorrt fp16
k2muse-tcn report --model models/P01 --trial OUT/trials/.../P01_..._Trial_1.h5 --plot r.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from k2muse_dataset.atomic import write_text_atomic
from k2muse_dataset.cli_errors import run_command
from k2muse_dataset.trial_h5 import read_trial_h5

from k2muse_learning.artifacts import ArtifactError
from k2muse_learning.export import ExportError
from k2muse_learning.parallel import ENGINES

USER_ERRORS = (ArtifactError, ExportError, RuntimeError)


def _train(args: argparse.Namespace) -> None:
    from k2muse_learning import training
    from k2muse_learning.windows import load_legs

    config = training.TrainingConfig.from_yaml(args.config) if args.config \
        else training.TrainingConfig()
    overrides = {k: v for k, v in {"split": args.split, "folds": args.folds,
                                   "epochs": args.epochs, "seed": args.seed,
                                   "threads": args.threads, "mode_keys": args.modes,
                                   "participants": args.participants,
                                   "conditions": args.conditions}.items() if v is not None}
    config = training.TrainingConfig.from_mapping({**config.to_dict(), **overrides})
    legs = load_legs(args.data, config.input_names, config.mode_keys, config.participants,
                     config.conditions)
    subjects = sorted({leg.participant for leg in legs})
    if config.split == "trials" and len(subjects) > 1:
        raise ValueError(f"split=trials trains per subject; choose one with --participants "
                         f"(found {subjects}) or use --split subjects")
    results = training.train_all(legs, config, show_progress=not args.quiet, jobs=args.jobs,
                                 backend=args.backend, address=args.scheduler)
    print(training.results_markdown(results))
    folder = training.write_trained_folder(args.out, results, config, legs,
                                           model_id=args.model_id,
                                           tensorrt_precision=args.tensorrt,
                                           overwrite=args.overwrite)
    print(f"model folder: {folder}")


def _export(args: argparse.Namespace) -> None:
    from k2muse_learning import artifacts, trt
    from k2muse_learning.windows import cut_windows, load_legs

    manifest, models = artifacts.load_torch_models(args.model)
    names = [channel["name"] for channel in manifest["inputs"]]
    window = manifest["window_length"]
    parity = None
    if args.data:
        parity = cut_windows(load_legs(args.data, names), window, hop=window).inputs[:256]
    trained = [artifacts.TrainedModel(m["mode_key"], models[m["mode_key"]], m.get("best_fold"),
                                      m.get("metrics", {})) for m in manifest["models"]]
    folder = artifacts.write_model_folder(
        args.out, trained, window_length=window, sample_rate_hz=manifest["sample_rate_hz"],
        input_names=names, synthetic_training_data=manifest.get("synthetic_training_data", True),
        model_id=manifest.get("model_id"), parity_windows=parity,
        tensorrt_precision=args.tensorrt, training=manifest.get("training"),
        overwrite=args.overwrite)
    print(f"model folder: {folder}")
    for entry in manifest["models"]:
        sim = Path(args.out) / "onnx_sim" / f"{entry['mode_key']}.onnx"
        engine = Path(args.out) / "trt" / f"{entry['mode_key']}_{args.tensorrt or 'fp16'}.engine"
        print("trtexec equivalent: " + trt.trtexec_command(
            sim, engine, args.tensorrt or "fp16", len(names), window))


def _report(args: argparse.Namespace) -> None:
    from k2muse_learning import report

    read_trial_h5(args.trial, load_emg=False, load_aus=False)  # a bad trial: one clear line
    mode_key, results = report.run_report(args.model, args.trial, args.mode_key, args.plot,
                                          args.repeats)
    print(report.format_table(mode_key, results))
    if args.json:
        write_text_atomic(args.json, json.dumps([asdict(r) for r in results], indent=2) + "\n")
    if args.plot:
        print(f"plot: {args.plot}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Argument parser with the train, export and report subcommands."""
    parser = argparse.ArgumentParser(prog="k2muse-tcn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="cross-validate per mode, write a model folder")
    train.add_argument("--data", required=True, help="trial HDF5 folder (process output)")
    train.add_argument("--out", required=True, help="model folder to create")
    train.add_argument("--config", help="YAML training config (default: built-in defaults)")
    train.add_argument("--split", choices=("trials", "subjects"),
                       help="trials: k-fold over trials per subject; subjects: leave-one-out")
    train.add_argument("--folds", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--threads", type=int, help="torch CPU threads (shared by the jobs)")
    train.add_argument("--jobs", type=_positive_int, default=1,
                       help="fold trainings at once (mode x fold), through joblib")
    train.add_argument("--backend", choices=ENGINES, default="local",
                       help="joblib engine for --jobs: local processes, a Dask cluster "
                            "(LocalCluster unless --scheduler) or Ray")
    train.add_argument("--scheduler", help="address of an existing Dask scheduler or Ray "
                                           "cluster for --backend dask|ray")
    train.add_argument("--modes", nargs="+", help="mode keys, e.g. LG_0 AS_5 DS_5")
    train.add_argument("--participants", nargs="+", help="e.g. P01")
    train.add_argument("--conditions", nargs="+", help="e.g. Ideal")
    train.add_argument("--model-id")
    train.add_argument("--tensorrt", choices=("fp16", "fp32"),
                       help="also build TensorRT engines (needs tensorrt and a GPU)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    export = commands.add_parser("export", help="re-export a model folder (e.g. add TensorRT)")
    export.add_argument("--model", required=True, help="existing model folder")
    export.add_argument("--out", required=True, help="new model folder")
    export.add_argument("--data", help="trial HDF5 folder for parity checks on real windows")
    export.add_argument("--tensorrt", choices=("fp16", "fp32"))
    export.add_argument("--overwrite", action="store_true")
    export.set_defaults(func=_export)

    rep = commands.add_parser("report", help="RMSE, R2, latency per backend on one trial")
    rep.add_argument("--model", required=True, help="model folder")
    rep.add_argument("--trial", required=True, help="trial HDF5 file")
    rep.add_argument("--mode-key", help="mode model to use (default: the trial's mode)")
    rep.add_argument("--plot", help="PNG path for estimated vs measured moment")
    rep.add_argument("--json", help="write the results as JSON here")
    rep.add_argument("--repeats", type=int, default=300, help="latency samples per backend")
    rep.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors end with one line and exit status 1, Ctrl-C with 130."""
    args = build_parser().parse_args(argv)
    return run_command(f"k2muse-tcn {args.command}", lambda: args.func(args), USER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
