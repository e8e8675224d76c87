"""PyTorch -> ONNX (fixed or dynamic batch) -> simplified single-file ONNX, with parity checks.

The legacy TorchScript exporter (opset 17) is used because it needs no onnxscript and gives
the plain Conv/Pad/Gemm graph TensorRT and ONNX Runtime both handle well. Weight norm is folded
into plain weights before export, and onnxslim folds the remaining constants.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import onnxslim
import torch
from k2muse_model.tcn import HipMomentTCN, without_weight_norm

INPUT_TENSOR = "hip_window"
OUTPUT_TENSOR = "hip_moment"
OPSET = 17
PARITY_TOLERANCE = 1e-4

Predictor = Callable[[np.ndarray], np.ndarray]


class ExportError(RuntimeError):
    """Export produced a model that is invalid or disagrees with PyTorch."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder, then os.replace (no half-written files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_onnx(model: HipMomentTCN, path: str | os.PathLike, window_length: int,
                batch_size: int | None = None) -> Path:
    """Export to ONNX; batch_size None gives a dynamic batch axis, an int a fixed one."""
    path = Path(path)
    folded = without_weight_norm(model)
    example = torch.zeros(batch_size or 1, model.config.input_channels, window_length)
    dynamic_axes = None if batch_size else {INPUT_TENSOR: {0: "batch"},
                                            OUTPUT_TENSOR: {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        tmp_path = Path(tmp) / path.name
        torch.onnx.export(folded, (example,), str(tmp_path), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_TENSOR], output_names=[OUTPUT_TENSOR],
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
        proto = onnx.load(str(tmp_path))
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def simplify_onnx(source: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Simplify with onnxslim and save as one self-contained file (weights embedded)."""
    destination = Path(destination)
    proto = onnx.load(str(source))
    slim = onnxslim.slim(proto)
    if slim is None:
        raise ExportError(f"onnxslim could not simplify {source}")
    onnx.checker.check_model(slim)
    atomic_write_bytes(destination, slim.SerializeToString())
    return destination


def cpu_session(path: str | os.PathLike, threads: int = 1) -> ort.InferenceSession:
    """ONNX Runtime CPU session with ``threads`` intra-op threads and every graph optimisation."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRuntimeRunner:
    """ONNX Runtime CPU session as a callable on a float32 (batch, channel, time) array."""

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        self.path = Path(path)
        self.session = cpu_session(path, threads)
        shape = self.session.get_inputs()[0].shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Estimate hip moment (N·m/kg) for each window: (batch, 1)."""
        feed = {INPUT_TENSOR: np.ascontiguousarray(windows, dtype=np.float32)}
        return self.session.run([OUTPUT_TENSOR], feed)[0]


class TorchRunner:
    """Eval-mode PyTorch model as the same kind of callable (reference for parity)."""

    def __init__(self, model: HipMomentTCN):
        self.model = model.eval()
        self.fixed_batch = None

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Estimate hip moment (N·m/kg) for each window: (batch, 1)."""
        with torch.inference_mode():
            return self.model(torch.from_numpy(np.asarray(windows, np.float32))).numpy()


def predict(runner: Predictor, windows: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Run windows (N, C, T) through a runner in batches -> (N,) estimates.

    A runner with a fixed batch (attribute fixed_batch) gets zero-padded full batches.
    """
    fixed = getattr(runner, "fixed_batch", None)
    step = fixed or batch_size
    windows = np.asarray(windows, np.float32)
    out = []
    for start in range(0, len(windows), step):
        chunk = windows[start:start + step]
        if fixed and len(chunk) < fixed:
            padded = np.zeros((fixed, *chunk.shape[1:]), np.float32)
            padded[:len(chunk)] = chunk
            out.append(np.asarray(runner(padded)).reshape(-1)[:len(chunk)])
        else:
            out.append(np.asarray(runner(chunk)).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def parity_error(reference: Predictor, candidate: Predictor, windows: np.ndarray) -> float:
    """Maximum absolute difference of two runners on the same windows (N·m/kg)."""
    if len(windows) == 0:
        raise ValueError("parity check needs at least one window")
    return float(np.max(np.abs(predict(reference, windows) - predict(candidate, windows))))


def check_parity(model: HipMomentTCN, candidate: Predictor, windows: np.ndarray,
                 tolerance: float = PARITY_TOLERANCE, label: str = "candidate") -> float:
    """Return max |candidate - PyTorch| on windows; raise ExportError above tolerance."""
    error = parity_error(TorchRunner(model), candidate, windows)
    if not error < tolerance:
        raise ExportError(f"{label} differs from PyTorch by {error:.3g} N*m/kg "
                          f"(tolerance {tolerance:g})")
    return error
