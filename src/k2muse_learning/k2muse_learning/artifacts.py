"""Model folder (architecture.md section 2): write, load and verify a TCN ensemble.

A folder holds one model per walking mode (mode_key), each as safetensors weights, ONNX
(dynamic and fixed batch 1), simplified ONNX and, where TensorRT is available, an engine,
plus manifest.json listing the sha256 of every file. Readers must call load_manifest, which
refuses a folder whose format, version, structure or any checksum does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from k2muse_learning import export
from k2muse_learning.tcn import HipMomentTCN, TCNConfig, build_tcn

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "k2muse-tcn-ensemble"
FORMAT_VERSION = 1
INPUT_UNITS = {"hip_angle": "rad", "hip_velocity": "rad/s"}
INPUT_DESCRIPTIONS = {
    "hip_angle": "sagittal hip angle, flexion +",
    "hip_velocity": "backward difference of hip_angle times sample_rate_hz",
}
OUTPUT_UNIT = "N*m/kg"


class ArtifactError(RuntimeError):
    """A model folder is missing, corrupt or does not match what the reader expects."""


@dataclass
class TrainedModel:
    """One trained mode model and what the manifest records about it."""

    mode_key: str
    model: HipMomentTCN
    best_fold: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(model: HipMomentTCN, path: Path, mode_key: str) -> None:
    """Save the state dict (normalisation buffers included) as safetensors."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"mode_key": mode_key, "architecture": json.dumps(model.config.to_dict())}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def load_weights(path: str | os.PathLike, config: TCNConfig | Mapping[str, Any]) -> HipMomentTCN:
    """Rebuild the module from config and load safetensors weights (no pickle); eval mode."""
    model = build_tcn(config)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ArtifactError(f"{path}: not readable safetensors weights ({error})") from error
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ArtifactError(f"{path}: weights do not match the architecture in the manifest "
                            f"({first_line})") from error
    return model.eval()


def _inputs_entry(input_names: Sequence[str]) -> list[dict[str, str]]:
    unknown = [name for name in input_names if name not in INPUT_UNITS]
    if unknown or not input_names:
        raise ValueError(f"input names must be a non-empty subset of {list(INPUT_UNITS)}, "
                         f"got {list(input_names)}")
    return [{"name": n, "unit": INPUT_UNITS[n], "description": INPUT_DESCRIPTIONS[n]}
            for n in input_names]


def _export_mode(staging: Path, trained: TrainedModel, window_length: int,
                 parity_windows: np.ndarray | None, tensorrt_precision: str | None
                 ) -> tuple[dict[str, str], dict[str, float]]:
    """Write every file of one mode model; return its files dict and parity errors."""
    key = trained.mode_key
    files = {"torch": f"torch/{key}.safetensors", "onnx": f"onnx/{key}.onnx",
             "onnx_b1": f"onnx/{key}_b1.onnx", "onnx_sim": f"onnx_sim/{key}.onnx"}
    save_weights(trained.model, staging / files["torch"], key)
    export.export_onnx(trained.model, staging / files["onnx"], window_length)
    export.export_onnx(trained.model, staging / files["onnx_b1"], window_length, batch_size=1)
    export.simplify_onnx(staging / files["onnx"], staging / files["onnx_sim"])
    runners: dict[str, export.Predictor] = {
        name: export.OnnxRuntimeRunner(staging / files[name])
        for name in ("onnx", "onnx_b1", "onnx_sim")}
    if tensorrt_precision:
        from k2muse_learning import trt

        files["tensorrt"] = f"trt/{key}_{tensorrt_precision}.engine"
        trt.build_engine(staging / files["onnx_sim"], staging / files["tensorrt"],
                         tensorrt_precision, trained.model.config.input_channels, window_length)
        runners["tensorrt"] = trt.TensorRTRunner(staging / files["tensorrt"])
    parity = {}
    if parity_windows is not None:
        for name, runner in runners.items():
            # FP16 engines are checked but cannot meet the FP32 tolerance.
            tolerance = 5e-2 if name == "tensorrt" and tensorrt_precision == "fp16" else \
                export.PARITY_TOLERANCE
            parity[name] = export.check_parity(trained.model, runner, parity_windows,
                                               tolerance, label=f"{key} {name}")
    return files, parity


def write_model_folder(folder: str | os.PathLike, trained: Sequence[TrainedModel], *,
                       window_length: int, sample_rate_hz: float, input_names: Sequence[str],
                       synthetic_training_data: bool, model_id: str | None = None,
                       parity_windows: np.ndarray | None = None,
                       tensorrt_precision: str | None = None,
                       training: Mapping[str, Any] | None = None,
                       extra_files: Mapping[str, bytes] | None = None,
                       overwrite: bool = False) -> Path:
    """Export trained mode models and write a complete, verified model folder.

    The folder is assembled in a sibling temp folder and moved into place only once every
    file and parity check succeeded, so an existing folder is never left half-replaced.
    parity_windows (N, C, T) raw windows are run through every exported backend and the max
    abs error against PyTorch is recorded; tensorrt_precision ("fp16"/"fp32") adds engines.
    extra_files (relative path -> content, e.g. results tables) are added and checksummed.
    """
    folder = Path(folder)
    if not trained:
        raise ValueError("need at least one trained model")
    keys = [t.mode_key for t in trained]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate mode keys: {keys}")
    configs = {t.model.config for t in trained}
    if len(configs) != 1:
        raise ValueError("all mode models of one folder must share one architecture")
    config = configs.pop()
    inputs = _inputs_entry(input_names)
    if config.input_channels != len(inputs):
        raise ValueError(f"model takes {config.input_channels} channels, inputs name "
                         f"{len(inputs)}")
    if folder.exists() and not overwrite:
        raise ArtifactError(f"{folder} already exists (pass overwrite to replace it)")
    stamp = datetime.now(timezone.utc)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.staging-"))
    try:
        models = []
        for item in trained:
            files, parity = _export_mode(staging, item, window_length, parity_windows,
                                         tensorrt_precision)
            models.append({"mode_key": item.mode_key, "files": files,
                           "best_fold": item.best_fold,
                           "metrics": {k: float(v) for k, v in item.metrics.items()},
                           "parity_max_abs_error": parity})
        for relative, content in (extra_files or {}).items():
            export.atomic_write_bytes(_safe_relative(staging, relative, staging), content)
        written = sorted(p for p in staging.rglob("*") if p.is_file())
        manifest = {
            "format": MANIFEST_FORMAT, "format_version": FORMAT_VERSION,
            "model_id": model_id or f"tcn-{stamp:%Y%m%dT%H%M%S}",
            "created_utc": stamp.isoformat(timespec="seconds"),
            "synthetic_training_data": bool(synthetic_training_data),
            "sample_rate_hz": float(sample_rate_hz),
            "window_length": int(window_length),
            "inputs": inputs,
            "input_tensor": {"name": export.INPUT_TENSOR, "layout": "batch,channel,time",
                             "dtype": "float32"},
            "output_tensor": {"name": export.OUTPUT_TENSOR, "unit": OUTPUT_UNIT,
                              "shape": "batch,1"},
            "architecture": config.to_dict(),
            "normalisation": "inside the model (first layer); inputs are raw SI values",
            "estimate_at": "last sample of the window",
            "models": models,
            "training": dict(training or {}),
            "sha256": {p.relative_to(staging).as_posix(): sha256_of(p) for p in written},
        }
        export.atomic_write_bytes(staging / MANIFEST_NAME,
                                  (json.dumps(manifest, indent=2) + "\n").encode())
        load_manifest(staging)  # never publish a folder its own reader would refuse
        _move_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _move_into_place(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.replace(staging, folder)
        return
    retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    os.replace(folder, retired)
    os.replace(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)


def _require(condition: bool, where: Path, message: str) -> None:
    if not condition:
        raise ArtifactError(f"{where}: {message}")


def _safe_relative(folder: Path, relative: str, where: Path) -> Path:
    pure = PurePosixPath(relative)
    _require(not pure.is_absolute() and ".." not in pure.parts, where,
             f"file path {relative!r} leaves the model folder")
    return folder / pure


def load_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """Read manifest.json, verify format, version, structure and every sha256; return it.

    Raises ArtifactError naming the file and the problem.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    _require(folder.is_dir(), folder, "model folder does not exist")
    _require(path.is_file(), path, "manifest missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: not valid JSON ({error})") from error
    _require(isinstance(manifest, dict), path, "manifest is not a JSON object")
    _require(manifest.get("format") == MANIFEST_FORMAT, path,
             f"format is {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
    version = manifest.get("format_version")
    _require(version == FORMAT_VERSION, path,
             f"format_version {version!r} is not supported (this reader knows "
             f"{FORMAT_VERSION})")
    required = ("sample_rate_hz", "window_length", "inputs", "input_tensor", "output_tensor",
                "architecture", "models", "sha256")
    missing = [key for key in required if key not in manifest]
    _require(not missing, path, f"missing key(s) {missing}")
    _check_structure(manifest, path)
    _check_files(manifest, folder, path)
    return manifest


def _check_structure(manifest: dict[str, Any], path: Path) -> None:
    window, rate = manifest["window_length"], manifest["sample_rate_hz"]
    _require(isinstance(window, int) and window > 0, path,
             f"window_length must be a positive integer, got {window!r}")
    _require(isinstance(rate, (int, float)) and rate > 0, path,
             f"sample_rate_hz must be positive, got {rate!r}")
    inputs = manifest["inputs"]
    _require(isinstance(inputs, list) and inputs and all(
        isinstance(i, dict) and INPUT_UNITS.get(i.get("name")) == i.get("unit") for i in inputs),
        path, f"inputs must list known channels with their units {INPUT_UNITS}, got {inputs!r}")
    try:
        config = TCNConfig.from_dict(manifest["architecture"])
    except (TypeError, ValueError, AttributeError) as error:
        raise ArtifactError(f"{path}: architecture cannot be rebuilt ({error})") from error
    _require(config.input_channels == len(inputs), path,
             f"architecture takes {config.input_channels} input channels but inputs lists "
             f"{len(inputs)}")
    models = manifest["models"]
    _require(isinstance(models, list) and models, path, "models must be a non-empty list")
    keys = [m.get("mode_key") if isinstance(m, dict) else None for m in models]
    _require(all(isinstance(k, str) and k for k in keys) and len(set(keys)) == len(keys), path,
             f"every model needs a unique mode_key, got {keys}")
    for model in models:
        files = model.get("files")
        _require(isinstance(files, dict) and "torch" in files, path,
                 f"model {model['mode_key']} lists no torch weights file")
    _require(isinstance(manifest["sha256"], dict), path, "sha256 must map file -> digest")


def _check_files(manifest: dict[str, Any], folder: Path, path: Path) -> None:
    digests = manifest["sha256"]
    for model in manifest["models"]:
        for relative in model["files"].values():
            _require(relative in digests, path, f"{relative} has no sha256 entry")
    for relative, expected in digests.items():
        file = _safe_relative(folder, relative, path)
        _require(file.is_file(), file, "listed in the manifest but missing")
        actual = sha256_of(file)
        _require(actual == expected, file,
                 f"sha256 mismatch (corrupt or replaced file): manifest {expected}, "
                 f"file {actual}")


def model_file(folder: str | os.PathLike, manifest: Mapping[str, Any], mode_key: str,
               kind: str) -> Path:
    """Path of one file (kind: torch, onnx, onnx_b1, onnx_sim, tensorrt) of a mode model."""
    for model in manifest["models"]:
        if model["mode_key"] == mode_key:
            files = model["files"]
            if kind not in files:
                raise ArtifactError(f"{folder}: model {mode_key} has no {kind} file "
                                    f"(has {sorted(files)})")
            return Path(folder) / files[kind]
    known = [m["mode_key"] for m in manifest["models"]]
    raise ArtifactError(f"{folder}: no model for mode {mode_key!r} (has {known})")


def load_torch_models(folder: str | os.PathLike) -> tuple[dict[str, Any],
                                                          dict[str, HipMomentTCN]]:
    """Verify a folder and load every mode model in eval mode: (manifest, {mode_key: model})."""
    manifest = load_manifest(folder)
    models = {m["mode_key"]: load_weights(model_file(folder, manifest, m["mode_key"], "torch"),
                                          manifest["architecture"])
              for m in manifest["models"]}
    return manifest, models
