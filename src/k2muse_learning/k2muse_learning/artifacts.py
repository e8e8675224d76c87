"""Model folder (architecture.md section 2): write, load and verify a TCN ensemble.

A folder holds one model per walking mode (mode_key), each as safetensors weights, ONNX
(dynamic and fixed batch 1), simplified ONNX and, where TensorRT is available, an engine,
plus manifest.json listing the sha256 of every file. The read-side contract (schema, paths,
checksums) lives in the torch-free ``k2muse_model.model_folder``; ``load_manifest`` here
adds what needs the training stack: the architecture rebuilt as a ``TCNConfig`` and every ONNX
and safetensors file opened and compared with the manifest. The writer records the manifest's
inputs, sample rate and window inside every model file, so a manifest edit that keeps the
checksums is still caught.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from k2muse_dataset.atomic import staging_prefix, sweep_leftovers
from k2muse_model.model_folder import (
    FORMAT_VERSION,
    INPUT_UNITS,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    ArtifactError,
    check_onnx_input,
    check_recorded_facts,
    model_file,
    recorded_facts,
    resolve_file,
    sha256_of,
    verify_folder,
)
from k2muse_model.tcn import HipMomentTCN, TCNConfig
from k2muse_model.weights import load_weights, safetensors_metadata
from safetensors.torch import save_file

from k2muse_learning import export, streaming

INPUT_DESCRIPTIONS = {
    "hip_angle": "sagittal hip angle, flexion +",
    "hip_velocity": "backward difference of hip_angle times sample_rate_hz",
}
OUTPUT_UNIT = "N*m/kg"
ONNX_KINDS = ("onnx", "onnx_b1", "onnx_sim")


@dataclass
class TrainedModel:
    """One trained mode model and what the manifest records about it."""

    mode_key: str
    model: HipMomentTCN
    best_fold: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def save_weights(model: HipMomentTCN, path: Path, mode_key: str,
                 facts: Mapping[str, str] | None = None) -> None:
    """Save the state dict (normalisation buffers included) as safetensors.

    ``facts`` (``model_folder.recorded_facts``) are stored in the metadata next to the
    architecture.
    """
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"mode_key": mode_key, "architecture": json.dumps(model.config.to_dict()),
                **(facts or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def _inputs_entry(input_names: Sequence[str]) -> list[dict[str, str]]:
    unknown = [name for name in input_names if name not in INPUT_UNITS]
    if unknown or not input_names:
        raise ValueError(f"input names must be a non-empty subset of {list(INPUT_UNITS)}, "
                         f"got {list(input_names)}")
    return [{"name": n, "unit": INPUT_UNITS[n], "description": INPUT_DESCRIPTIONS[n]}
            for n in input_names]


def _record_in_onnx(path: Path, facts: Mapping[str, str]) -> None:
    """Store the manifest facts in an ONNX file's metadata_props (rewritten atomically)."""
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, dict(facts))
    export.atomic_write_bytes(path, proto.SerializeToString())


def _check_onnx_file(path: Path, manifest: Mapping[str, Any]) -> None:
    """An ONNX file must parse and take the manifest's tensor, with the manifest's facts."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - protobuf raises several unrelated types
        raise ArtifactError(f"{path}: not an ONNX model ({type(error).__name__})") from None
    graph_inputs = [i for i in proto.graph.input
                    if i.name not in {t.name for t in proto.graph.initializer}]
    dims = [[d.dim_value if d.HasField("dim_value") else d.dim_param
             for d in i.type.tensor_type.shape.dim] for i in graph_inputs]
    check_onnx_input(path, manifest, [i.name for i in graph_inputs], dims[0] if dims else [])
    check_recorded_facts(path, manifest, {p.key: p.value for p in proto.metadata_props})


def _export_mode(staging: Path, trained: TrainedModel, window_length: int,
                 parity_windows: np.ndarray | None, tensorrt_precision: str | None,
                 facts: Mapping[str, str]) -> tuple[dict[str, str], dict[str, float]]:
    """Write every file of one mode model; return its files dict and parity errors."""
    key = trained.mode_key
    files = {"torch": f"torch/{key}.safetensors", "onnx": f"onnx/{key}.onnx",
             "onnx_b1": f"onnx/{key}_b1.onnx", "onnx_sim": f"onnx_sim/{key}.onnx"}
    save_weights(trained.model, staging / files["torch"], key, facts)
    export.export_onnx(trained.model, staging / files["onnx"], window_length)
    export.export_onnx(trained.model, staging / files["onnx_b1"], window_length, batch_size=1)
    export.simplify_onnx(staging / files["onnx"], staging / files["onnx_sim"])
    for name in ONNX_KINDS:
        _record_in_onnx(staging / files[name], facts)
    runners: dict[str, export.Predictor] = {
        name: export.OnnxRuntimeRunner(staging / files[name]) for name in ONNX_KINDS}
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
    sweep_leftovers(folder.parent)  # staging folders of interrupted earlier runs
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=staging_prefix(folder)))
    facts = recorded_facts({"inputs": inputs, "sample_rate_hz": sample_rate_hz,
                            "window_length": window_length})
    try:
        models = []
        for item in trained:
            files, parity = _export_mode(staging, item, window_length, parity_windows,
                                         tensorrt_precision, facts)
            models.append({"mode_key": item.mode_key, "files": files,
                           "best_fold": item.best_fold,
                           "metrics": {k: float(v) for k, v in item.metrics.items()},
                           "parity_max_abs_error": parity})
        fused = streaming.write_fused(staging, [t.model for t in trained], keys, parity_windows)
        _record_in_onnx(staging / fused["file"], facts)
        for relative, content in (extra_files or {}).items():
            export.atomic_write_bytes(resolve_file(staging, relative, staging), content)
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
            "fused_streaming": fused,
            "training": dict(training or {}),
            "sha256": {p.relative_to(staging).as_posix(): sha256_of(p) for p in written},
        }
        export.atomic_write_bytes(staging / MANIFEST_NAME,
                                  (json.dumps(manifest, indent=2) + "\n").encode())
        load_manifest(staging)  # never publish a folder its own reader would refuse
        _move_into_place(staging, folder)
    except OSError as error:  # e.g. a full disk: named after the folder, not the staging copy
        shutil.rmtree(staging, ignore_errors=True)
        raise OSError(error.errno, error.strerror, str(folder)) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _move_into_place(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.replace(staging, folder)
        return
    retired = folder.with_name(staging_prefix(folder, "old").rstrip("-"))
    os.replace(folder, retired)
    os.replace(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)


def load_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """Verify a folder (``model_folder.load_manifest``) and every model file in it; return it.

    On top of the schema, paths and checksums: the architecture must rebuild as a TCNConfig,
    every ONNX file must be ONNX with the manifest's input tensor, and ONNX and safetensors
    files must carry the manifest's inputs, sample rate and window. Raises ArtifactError.
    """
    folder = Path(folder)
    manifest = verify_folder(folder)
    path = folder / MANIFEST_NAME
    try:
        TCNConfig.from_dict(manifest["architecture"])
    except (TypeError, ValueError) as error:
        raise ArtifactError(f"{path}: architecture cannot be rebuilt ({error})") from None
    for entry in manifest["models"]:
        for kind in ONNX_KINDS:
            if kind in entry["files"]:
                _check_onnx_file(model_file(folder, manifest, entry["mode_key"], kind), manifest)
        weights = model_file(folder, manifest, entry["mode_key"], "torch")
        check_recorded_facts(weights, manifest, safetensors_metadata(weights))
    return manifest


def load_torch_models(folder: str | os.PathLike) -> tuple[dict[str, Any],
                                                          dict[str, HipMomentTCN]]:
    """Verify a folder and load every mode model in eval mode: (manifest, {mode_key: model})."""
    manifest = load_manifest(folder)
    models = {m["mode_key"]: load_weights(model_file(folder, manifest, m["mode_key"], "torch"),
                                          manifest["architecture"], manifest)
              for m in manifest["models"]}
    return manifest, models
