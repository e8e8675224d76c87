"""Read side of the model-folder contract (docs/architecture.md section 2), free of torch.

A model folder holds ``manifest.json`` and the files it lists with their sha256. Everything a
reader may trust is checked here before any model file is loaded: the manifest's schema (types
and ranges, so an edited manifest cannot make a reader allocate terabytes), that every listed
path stays inside the folder (``..``, absolute paths and symlinks leading out are refused),
every checksum, and that the TCN's receptive field fits the window. Facts a manifest edit
could falsify without touching a checksum (input channels and their order, sample rate,
window) are also recorded inside the model files at export (``RECORDED_KEYS``) and compared
by :func:`check_recorded_facts` when a file is opened. Only the standard library is used, so
the estimator can verify a folder without the training stack.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "k2muse-tcn-ensemble"
FORMAT_VERSION = 1
INPUT_UNITS = {"hip_angle": "rad", "hip_velocity": "rad/s"}
FILE_KINDS = ("torch", "onnx", "onnx_b1", "onnx_sim", "tensorrt")
MAX_MANIFEST_BYTES = 1 << 20
# Ranges of the manifest's numbers: generous for any sensible model, refusing absurd ones.
SAMPLE_RATE_RANGE_HZ = (1.0, 10_000.0)
WINDOW_RANGE = (2, 100_000)
ARCHITECTURE_RANGES = {"input_channels": (1, len(INPUT_UNITS)), "channels": (1, 4096),
                       "levels": (1, 24), "kernel_size": (2, 64)}
# Keys of the facts stored in ONNX metadata_props and safetensors metadata at export.
RECORDED_KEYS = {"inputs": "k2muse.inputs", "sample_rate_hz": "k2muse.sample_rate_hz",
                 "window_length": "k2muse.window_length"}


class ArtifactError(RuntimeError):
    """A model folder is missing, corrupt or does not match what the reader expects."""


def _require(condition: bool, where: Path | str, message: str) -> None:
    if not condition:
        raise ArtifactError(f"{where}: {message}")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def receptive_field(architecture: Mapping[str, Any]) -> int:
    """Past samples (current one included) reaching a TCN output: two convolutions per level."""
    return 1 + 2 * (architecture["kernel_size"] - 1) * (2 ** architecture["levels"] - 1)


def recorded_facts(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The manifest facts to store in every model file, as metadata strings."""
    return {RECORDED_KEYS["inputs"]: json.dumps([i["name"] for i in manifest["inputs"]]),
            RECORDED_KEYS["sample_rate_hz"]: repr(float(manifest["sample_rate_hz"])),
            RECORDED_KEYS["window_length"]: str(int(manifest["window_length"]))}


def check_recorded_facts(path: Path, manifest: Mapping[str, Any],
                         recorded: Mapping[str, str]) -> None:
    """Refuse a model file whose recorded facts contradict the manifest (absent: not checked)."""
    expected = recorded_facts(manifest)
    for name, key in RECORDED_KEYS.items():
        if key in recorded and recorded[key] != expected[key]:
            raise ArtifactError(f"{path}: the model was exported with {name} {recorded[key]}, "
                                f"but the manifest says {expected[key]}")


def check_onnx_input(path: Path, manifest: Mapping[str, Any], names: Sequence[str],
                     shape: Sequence[Any]) -> None:
    """The graph must take one (batch, channels, window) tensor under the manifest's name."""
    tensor_name = manifest["input_tensor"]["name"]
    _require(list(names) == [tensor_name], path,
             f"inputs {list(names)}, manifest says [{tensor_name!r}]")
    expected = (len(manifest["inputs"]), manifest["window_length"])
    _require(len(shape) == 3 and tuple(shape[1:]) == expected, path,
             f"input shape {list(shape)}, manifest says (batch, {expected[0]}, {expected[1]})")


def resolve_file(folder: Path, relative: Any, where: Path | str) -> Path:
    """Path of a listed file, refused when it is not a plain relative path inside ``folder``.

    Symbolic links are resolved first, so one leading out of the folder is refused too.
    """
    _require(isinstance(relative, str) and relative, where,
             f"file path {relative!r} is not a non-empty string")
    pure = PurePosixPath(relative)
    _require(not pure.is_absolute() and ".." not in pure.parts and "\\" not in relative, where,
             f"file path {relative!r} leaves the model folder")
    path = folder / pure
    root = folder.resolve()
    _require(path.resolve() == root or root in path.resolve().parents, where,
             f"file path {relative!r} resolves outside the model folder "
             f"({path.resolve()})")
    return path


def _read_json(path: Path) -> Any:
    _require(path.is_file(), path, "manifest missing")
    size = path.stat().st_size
    _require(size <= MAX_MANIFEST_BYTES, path,
             f"{size} bytes; a manifest is at most {MAX_MANIFEST_BYTES}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise ArtifactError(f"{path}: JSON nested too deeply") from None


def _number(data: Mapping[str, Any], key: str, where: str, low: float, high: float,
            integer: bool) -> None:
    value = data.get(key)
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    _require(ok and low <= value <= high, where,
             f"{key} must be {'an integer' if integer else 'a number'} in {low:g}..{high:g}, "
             f"got {value!r}")


def _check_schema(manifest: Any, path: Path) -> None:
    _require(isinstance(manifest, dict), path, "manifest is not a JSON object")
    _require(manifest.get("format") == MANIFEST_FORMAT, path,
             f"format is {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
    version = manifest.get("format_version")
    _require(version == FORMAT_VERSION and not isinstance(version, bool), path,
             f"format_version {version!r} is not supported (this reader knows "
             f"{FORMAT_VERSION})")
    required = ("sample_rate_hz", "window_length", "inputs", "input_tensor", "output_tensor",
                "architecture", "models", "sha256")
    missing = [key for key in required if key not in manifest]
    _require(not missing, path, f"missing key(s) {missing}")
    where = str(path)
    _number(manifest, "sample_rate_hz", where, *SAMPLE_RATE_RANGE_HZ, integer=False)
    _number(manifest, "window_length", where, *WINDOW_RANGE, integer=True)
    inputs = manifest["inputs"]
    names = [i.get("name") if isinstance(i, dict) else None for i in inputs] \
        if isinstance(inputs, list) else []
    _require(bool(names) and len(set(names)) == len(names) and all(
        isinstance(i, dict) and INPUT_UNITS.get(i.get("name")) == i.get("unit") for i in inputs),
        path, f"inputs must list distinct known channels with their units {INPUT_UNITS}, got "
              f"{inputs!r}")
    for key in ("input_tensor", "output_tensor"):
        _require(isinstance(manifest[key], dict), path, f"{key} must be an object")
    _require(isinstance(manifest["input_tensor"].get("name"), str), path,
             "input_tensor.name must be a string")
    _check_architecture(manifest["architecture"], len(names), manifest["window_length"], path)
    models = manifest["models"]
    _require(isinstance(models, list) and models and all(isinstance(m, dict) for m in models),
             path, "models must be a non-empty list of objects")
    keys = [m.get("mode_key") for m in models]
    _require(all(isinstance(k, str) and k for k in keys) and len(set(keys)) == len(keys), path,
             f"every model needs a unique mode_key, got {keys}")
    for model in models:
        files = model.get("files")
        _require(isinstance(files, dict) and "torch" in files, path,
                 f"model {model['mode_key']} lists no torch weights file")
        bad = {kind: value for kind, value in files.items()
               if kind not in FILE_KINDS or not isinstance(value, str)}
        _require(not bad, path, f"model {model['mode_key']}: files must map "
                                f"{list(FILE_KINDS)} to path strings, got {bad!r}")
    digests = manifest["sha256"]
    _require(isinstance(digests, dict) and all(
        isinstance(v, str) and len(v) == 64 for v in digests.values()), path,
        "sha256 must map file -> 64-digit hex digest")


def _check_architecture(architecture: Any, channels: int, window: int, path: Path) -> None:
    _require(isinstance(architecture, dict), path, "architecture must be an object")
    _require(architecture.get("kind", "tcn") == "tcn", path,
             f"architecture kind {architecture.get('kind')!r} is not 'tcn'")
    where = f"{path}: architecture"
    for key, (low, high) in ARCHITECTURE_RANGES.items():
        _number(architecture, key, where, low, high, integer=True)
    _number(architecture, "dropout", where, 0.0, 0.99, integer=False)
    _require(isinstance(architecture.get("weight_norm", True), bool), path,
             "architecture.weight_norm must be true or false")
    _require(architecture["input_channels"] == channels, path,
             f"architecture takes {architecture['input_channels']} input channels but inputs "
             f"lists {channels}")
    field = receptive_field(architecture)
    _require(field <= window, path,
             f"the TCN's receptive field ({field} samples) exceeds window_length {window}")
    stated = architecture.get("receptive_field", field)
    _require(stated == field, path,
             f"architecture.receptive_field {stated!r} disagrees with levels and kernel_size "
             f"({field})")


def _check_files(manifest: dict[str, Any], folder: Path, path: Path) -> None:
    digests = manifest["sha256"]
    for model in manifest["models"]:
        for relative in model["files"].values():
            _require(relative in digests, path, f"{relative} has no sha256 entry")
    for relative, expected in digests.items():
        file = resolve_file(folder, relative, path)
        _require(file.is_file(), file, "listed in the manifest but missing")
        actual = sha256_of(file)
        _require(actual == expected, file,
                 f"sha256 mismatch (corrupt or replaced file): manifest {expected}, "
                 f"file {actual}")


def verify_folder(folder: str | os.PathLike) -> dict[str, Any]:
    """Read manifest.json, check its schema, paths and every sha256; return the manifest.

    Raises ArtifactError naming the file and the problem; no model file is read before the
    schema passed.
    """
    folder = Path(folder)
    _require(folder.is_dir(), folder, "model folder does not exist")
    path = folder / MANIFEST_NAME
    manifest = _read_json(path)
    _check_schema(manifest, path)
    _check_files(manifest, folder, path)
    return manifest


def model_file(folder: str | os.PathLike, manifest: Mapping[str, Any], mode_key: str,
               kind: str) -> Path:
    """Path of one file (kind: torch, onnx, onnx_b1, onnx_sim, tensorrt) of a mode model."""
    folder = Path(folder)
    for model in manifest["models"]:
        if model["mode_key"] == mode_key:
            files = model["files"]
            if kind not in files:
                raise ArtifactError(f"{folder}: model {mode_key} has no {kind} file "
                                    f"(has {sorted(files)})")
            return resolve_file(folder, files[kind], folder / MANIFEST_NAME)
    known = [m["mode_key"] for m in manifest["models"]]
    raise ArtifactError(f"{folder}: no model for mode {mode_key!r} (has {known})")
