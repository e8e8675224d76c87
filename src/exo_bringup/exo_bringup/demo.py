"""``exo-demo``: the whole mission end to end on a generated dataset, results in one folder.

generate a small synthetic K2MUSE release (k2muse_dataset.synth) -> process it with the real
readers (k2muse_dataset.process) -> cross-validated TCN training on a short schedule ->
ONNX export into a model folder (k2muse_learning) -> replay a held-out participant's trial
through the full graph (trial_replay, hip_moment_estimator, assistance_profile,
admittance_controller, simulated_actuator, topic_recorder, each its own process over DDS, as
exo_control.graph describes them and exo_control.graph_processes starts them) ->
exo-analyze -> metrics.json and plots beside the model, the dataset and the recording.

Real data: ``--trial FILE`` replays a trial HDF5 file (``k2muse import`` output) or a c3d file
(imported first, metadata unknown) instead of the held-out generated trial; ``--model DIR``
uses a trained model folder instead of training one (with both, nothing is generated or
trained). The assistance scales with the body mass: the trial's, else ``--body-mass``; a trial
without one and no option is refused before any node starts.

An output folder that already holds something is never overwritten: the run goes into a new
timestamped subfolder, unless ``--force`` is given for a folder an earlier demo wrote.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from exo_control.graph_processes import GraphError, config_files, run_graph
from k2muse_dataset.cli_errors import run_command
from tqdm import tqdm

DEMO_MARKER = ".exo-demo"


class DemoError(RuntimeError):
    """A demo step that failed; the message says which and where its log is."""


# --- dataset and model ------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoSettings:
    """The embedded default: small enough for ten minutes on two cores."""

    participants: tuple[str, ...] = ("P01", "P02", "P03")
    replay_participant: str = "P03"  # held out of training
    mode_keys: tuple[str, ...] = ("LG_0",)
    trials: int = 2
    duration_s: float = 30.0
    seed: int = 0
    folds: int = 2
    epochs: int = 4
    windows_per_epoch: int = 400
    channels: int = 16
    threads: int = 2


def make_dataset(out: Path, settings: DemoSettings) -> Path:
    """Generate the synthetic release and process it; return the processed root."""
    from k2muse_dataset.process import process_release
    from k2muse_dataset.synth import generate_release

    release = generate_release(out / "dataset" / "release", participants=settings.participants,
                               mode_keys=settings.mode_keys, trials=settings.trials,
                               duration_s=settings.duration_s, seed=settings.seed)
    processed = out / "dataset" / "processed"
    process_release(release, processed, jobs=settings.threads, progress=True)
    return processed


def train_model(processed: Path, out: Path, settings: DemoSettings) -> tuple[Path, dict]:
    """Cross-validated TCN training on the non-replayed participants, exported with ONNX."""
    from k2muse_learning.training import TrainingConfig, train_all, write_trained_folder
    from k2muse_learning.windows import load_legs

    training = [p for p in settings.participants if p != settings.replay_participant]
    config = TrainingConfig(
        folds=settings.folds, epochs=settings.epochs, patience=2,
        windows_per_epoch=settings.windows_per_epoch, threads=settings.threads,
        seed=settings.seed, participants=training,
        architecture={"channels": settings.channels, "levels": 4, "kernel_size": 4,
                      "dropout": 0.0, "weight_norm": True})
    legs = load_legs(processed, config.input_names, participants=training)
    results = train_all(legs, config, show_progress=True)
    model = write_trained_folder(out / "model", results, config, legs,
                                 model_id=f"demo-tcn-{'-'.join(training)}", parity_count=64)
    folds = {r.mode_key: {"best_fold": r.best_fold, "rmse_nm_per_kg": r.best.rmse_nm_per_kg,
                          "r2": r.best.r2, "baseline_r2": r.best.baseline_r2} for r in results}
    return model, folds


def replay_trial(processed: Path, settings: DemoSettings) -> Path:
    """First trial of the held-out participant."""
    from k2muse_dataset.trial_h5 import iter_trial_files

    for path in iter_trial_files(processed / "trials" / settings.replay_participant):
        return path
    raise DemoError(f"no processed trial of {settings.replay_participant} under {processed}")


def user_trial(path: Path, out: Path, body_mass_kg: float | None) -> Path:
    """The user's trial HDF5 file, or a c3d file imported into ``out/dataset/imported``."""
    if not path.is_file():
        raise DemoError(f"--trial {path}: no such file")
    if path.suffix.lower() != ".c3d":
        return path
    from k2muse_dataset.importer import import_c3d_files

    options = {} if body_mass_kg is None else {"body_mass_kg": body_mass_kg}
    result = import_c3d_files(path, out / "dataset" / "imported", options)
    return Path(result["rows"][0]["output"])


def check_model(folder: Path) -> dict:
    """The model folder's verified manifest; a DemoError naming the problem otherwise."""
    from k2muse_learning.artifacts import ArtifactError, load_manifest

    if not folder.is_dir():
        raise DemoError(f"--model {folder}: no such folder")
    try:
        return load_manifest(folder)
    except ArtifactError as exc:
        raise DemoError(f"--model {folder}: {exc}") from None


def replay_body_mass(trial_body_mass_kg: float, option_kg: float | None, trial: Path) -> float:
    """The trial's body mass, else the option; refused before the graph starts if neither."""
    import math

    from exo_common.params import field_specs
    from exo_control.assistance import AssistanceConfig

    mass = trial_body_mass_kg if math.isfinite(trial_body_mass_kg) else option_kg
    if mass is None:
        raise DemoError(f"{trial}: body mass unknown (the trial has none); give --body-mass KG "
                        "for the assistance profile")
    allowed = field_specs(AssistanceConfig)["body_mass_kg"][1]
    low, high = allowed.low, allowed.high
    if not low <= mass <= high:
        raise DemoError(f"body mass {mass:g} kg outside the assistance profile's range "
                        f"{low:g}..{high:g} kg")
    return float(mass)


# --- output folder and CLI ----------------------------------------------------------------------

def prepare_output(requested: Path, force: bool) -> Path:
    """The folder this run writes into: never one that holds someone else's data."""
    if requested.exists() and not requested.is_dir():
        raise DemoError(f"{requested} is a file, not a folder")
    if not requested.exists() or not any(requested.iterdir()):
        folder = requested
    elif force:
        if not (requested / DEMO_MARKER).exists():
            raise DemoError(f"{requested} was not written by exo-demo; refusing to replace it "
                            "(choose another --output)")
        shutil.rmtree(requested)
        folder = requested
    else:
        folder = requested / datetime.now(timezone.utc).strftime("run-%Y%m%dT%H%M%SZ")
        print(f"exo-demo: {requested} is not empty; writing this run to {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text("written by exo-demo; --force may replace this folder\n")
    return folder


def run_demo(out: Path, settings: DemoSettings = DemoSettings(), rate_scale: float = 1.0,
             trial_file: Path | None = None, model_folder: Path | None = None,
             body_mass_kg: float | None = None) -> dict:
    """Every step in order; returns (and writes) the demo summary.

    ``trial_file`` / ``model_folder``: the user's trial (HDF5 or c3d) and model replace the
    generated trial and the trained model; ``body_mass_kg`` is used when the trial has none.
    """
    from exo_control.analyze import analyze, limits_from_params_files
    from k2muse_dataset.atomic import write_text_atomic
    from k2muse_dataset.trial_h5 import read_trial_h5

    timings: dict[str, float] = {}

    def step(name: str, fn: Callable[[], object]):
        tqdm.write(f"== {name}")
        start = time.monotonic()
        try:
            return fn()
        finally:
            timings[name] = round(time.monotonic() - start, 2)

    manifest = check_model(model_folder) if model_folder is not None else None
    if trial_file is not None:
        trial = step("import trial", lambda: user_trial(trial_file, out, body_mass_kg))
        replayed = read_trial_h5(trial, load_emg=False, load_aus=False)
        body_mass = replay_body_mass(replayed.body_mass_kg, body_mass_kg, trial)
    processed = None
    if trial_file is None or model_folder is None:
        processed = step("generate and process dataset", lambda: make_dataset(out, settings))
    if model_folder is None:
        model, training = step("train and export TCN",
                               lambda: train_model(processed, out, settings))
        manifest = check_model(model)
    else:
        model, training = model_folder, {"model_id": manifest["model_id"]}
    if trial_file is None:
        trial = replay_trial(processed, settings)
        replayed = read_trial_h5(trial, load_emg=False, load_aus=False)
        body_mass = replay_body_mass(replayed.body_mass_kg, body_mass_kg, trial)
    bag = step("replay through the graph", lambda: run_graph(
        trial, model, out / "recording", out / "logs", body_mass, rate_scale))
    limits = limits_from_params_files(config_files())
    metrics = step("analyze recording", lambda: analyze(bag, out, limits))
    summary = {
        "output": str(out), "synthetic_data": bool(replayed.synthetic),
        "synthetic_training_data": bool(manifest["synthetic_training_data"]),
        "settings": settings.__dict__, "body_mass_kg": body_mass,
        "replayed_trial": str(trial), "model_folder": str(model), "recording": str(bag),
        "parameter_files": [str(f) for f in config_files()],
        "training": training, "metrics_file": str(out / "metrics.json"),
        "plots": metrics["plots"], "step_seconds": timings,
        "total_seconds": round(sum(timings.values()), 2),
    }
    write_text_atomic(out / "demo_summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``exo-demo``."""
    parser = argparse.ArgumentParser(prog="exo-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True,
                        help="results folder (a non-empty one gets a timestamped subfolder)")
    parser.add_argument("--force", action="store_true",
                        help="replace the results of an earlier exo-demo run in --output")
    parser.add_argument("--rate-scale", type=float, default=1.0,
                        help="replay speed relative to the capture rate (default 1.0)")
    parser.add_argument("--epochs", type=int, default=DemoSettings.epochs,
                        help=f"training epochs per fold (default {DemoSettings.epochs})")
    parser.add_argument("--seed", type=int, default=DemoSettings.seed, help="dataset seed")
    parser.add_argument("--trial", type=Path,
                        help="replay this trial instead of a generated one: a trial .h5 file "
                        "(k2muse import / process) or a Plug-in Gait .c3d file")
    parser.add_argument("--model", type=Path,
                        help="use this model folder (k2muse-tcn train) instead of training one")
    parser.add_argument("--body-mass", type=float,
                        help="wearer's body mass in kg for the assistance profile, used when "
                        "the trial has none")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``exo-demo``."""
    from exo_control.analyze import headline

    args = build_parser().parse_args(argv)
    if not 0.1 <= args.rate_scale <= 10.0 or args.epochs < 1:
        print("exo-demo: --rate-scale must be in [0.1, 10] and --epochs >= 1", file=sys.stderr)
        return 2
    settings = DemoSettings(epochs=args.epochs, seed=args.seed)

    def run() -> None:
        out = prepare_output(args.output, args.force)
        summary = run_demo(out, settings, args.rate_scale, args.trial, args.model,
                           args.body_mass)
        metrics = json.loads(Path(summary["metrics_file"]).read_text())
        print(headline(metrics))
        print(f"exo-demo finished in {summary['total_seconds']:.0f} s; results in {out}")
        print(f"  metrics: {summary['metrics_file']}")
        print(f"  plots:   {', '.join(str(out / p) for p in summary['plots'])}")

    return run_command("exo-demo", run, (DemoError, GraphError))


if __name__ == "__main__":
    sys.exit(main())
