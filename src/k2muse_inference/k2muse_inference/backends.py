"""Inference backends behind one small interface, and the fallback chain that picks one.

A backend loads every per-mode model of the ensemble once and answers ``predict(batch)`` with
one row of outputs per model, so the ensemble average and the validity checks stay in one
place (``ensemble.py``) whatever runs the models. Heavy libraries (tensorrt, torch,
onnxruntime) are imported only when their backend is built, so a missing one costs nothing
until it is asked for and then becomes a reason in the fallback log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from k2muse_model.model_folder import (
    ArtifactError,
    check_onnx_input,
    check_recorded_facts,
    model_file,
)

# Fastest first: the fused streaming graph steps one sample per call on the CPU, cheaper than
# even a GPU engine's launch; the windowed backends remain as fallbacks.
BACKEND_NAMES = ("onnxruntime_streaming", "tensorrt", "onnxruntime", "pytorch")
FUSED_ENTRY = "fused_streaming"


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (library, hardware or model file missing)."""


class ModelMismatch(RuntimeError):
    """A model file does not match its manifest (tensor names, channels, window length)."""


class Backend(Protocol):
    """Runs every model of the ensemble on one batch of windows."""

    name: str

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Map (batch, channel, time) float32 windows to (models, batch) float64 moments."""
        ...


@dataclass(frozen=True)
class EnsembleFiles:
    """What a backend loads: a verified model folder and its tensor contract."""

    folder: Path
    manifest: dict
    mode_keys: tuple[str, ...]
    input_name: str
    channels: int
    window_length: int

    def paths(self, kind: str) -> list[Path]:
        """One file kind (onnx, onnx_sim, torch, tensorrt) per model, or BackendUnavailable."""
        try:
            return [model_file(self.folder, self.manifest, key, kind) for key in self.mode_keys]
        except ArtifactError as error:
            raise BackendUnavailable(str(error)) from error


@dataclass(frozen=True)
class BackendOptions:
    """Tuning knobs of the backends (all have working defaults)."""

    onnx_threads: int = 1
    onnx_prefer_simplified: bool = True
    torch_threads: int = 1


def _check_output(outputs: np.ndarray, models: int, batch: int, backend: str) -> np.ndarray:
    """Reshape raw outputs to (models, batch) or fail loudly on a shape the contract forbids."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.size != models * batch:
        raise ModelMismatch(
            f"{backend}: expected {models} models x {batch} outputs, got shape {outputs.shape}"
        )
    return outputs.reshape(models, batch)


class OnnxRuntimeBackend:
    """ONNX Runtime on the CPU, one intra-op thread by default so it never fights the executor."""

    name = "onnxruntime"

    def __init__(self, ensemble: EnsembleFiles, options: BackendOptions):
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise BackendUnavailable(f"onnxruntime is not installed ({error})") from error
        kinds = ["onnx_sim", "onnx"] if options.onnx_prefer_simplified else ["onnx", "onnx_sim"]
        paths, reasons = None, []
        for kind in kinds:
            try:
                paths = ensemble.paths(kind)
                break
            except BackendUnavailable as error:
                reasons.append(str(error))
        if paths is None:
            raise BackendUnavailable("; ".join(reasons))
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = options.onnx_threads
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.files = paths
        self._sessions = [_onnx_session(ort, path, session_options, ensemble) for path in paths]
        self._input_name = ensemble.input_name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(batch, channel, time) windows -> (models, batch) moments in N·m/kg."""
        outputs = [session.run(None, {self._input_name: batch})[0] for session in self._sessions]
        return _check_output(np.stack(outputs), len(self._sessions), len(batch), self.name)


def _onnx_session(ort, path: Path, options, ensemble: EnsembleFiles):
    """Open one ONNX file; it must be ONNX, take the manifest's tensor and carry its facts."""
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own unrelated types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelMismatch(f"{path}: not a loadable ONNX model ({reason})") from None
    inputs = session.get_inputs()
    try:
        check_onnx_input(path, ensemble.manifest, [i.name for i in inputs],
                         inputs[0].shape if inputs else [])
        check_recorded_facts(path, ensemble.manifest,
                             session.get_modelmeta().custom_metadata_map)
    except ArtifactError as error:
        raise ModelMismatch(str(error)) from None
    return session


class StreamingBackend(Backend, Protocol):
    """A backend that also carries the models' convolution history between calls."""

    def prime(self, windows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Whole windows from zero history -> ((models, batch) moments, states to continue)."""
        ...

    def step(self, samples: np.ndarray, states: list[np.ndarray]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        """(batch, channel, 1) newest samples after ``states`` -> (moments, new states)."""
        ...


def fused_streaming_file(ensemble: EnsembleFiles) -> tuple[Path, dict]:
    """The fused streaming graph and its manifest entry, or BackendUnavailable.

    The file must be one the manifest checksums (so the folder reader has already verified its
    path and content), and the graph must hold every mode the node runs.
    """
    entry = ensemble.manifest.get(FUSED_ENTRY)
    if not isinstance(entry, dict):
        raise BackendUnavailable(f"{ensemble.folder}: the model folder has no {FUSED_ENTRY} "
                                 "graph (exported before it existed)")
    relative, keys = entry.get("file"), entry.get("mode_keys")
    if relative not in ensemble.manifest["sha256"]:
        raise ModelMismatch(f"{ensemble.folder}: {FUSED_ENTRY} file {relative!r} has no sha256 "
                            "entry")
    if not isinstance(keys, list) or not set(ensemble.mode_keys) <= set(keys):
        raise ModelMismatch(f"{ensemble.folder}: {FUSED_ENTRY} holds modes {keys}, the node "
                            f"runs {list(ensemble.mode_keys)}")
    return ensemble.folder / relative, entry


class FusedStreamingBackend:
    """The fused ensemble graph on ONNX Runtime: every mode in one call, one sample per step.

    ``predict`` runs whole windows from zero history (the windowed estimate, one call for all
    modes); ``prime`` also returns the history, and ``step`` advances it by one sample.
    """

    name = "onnxruntime_streaming"

    def __init__(self, ensemble: EnsembleFiles, options: BackendOptions):
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise BackendUnavailable(f"onnxruntime is not installed ({error})") from error
        path, entry = fused_streaming_file(ensemble)
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = options.onnx_threads
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(path), session_options,
                                             providers=["CPUExecutionProvider"])
        try:
            check_recorded_facts(path, ensemble.manifest,
                                 self._session.get_modelmeta().custom_metadata_map)
        except ArtifactError as error:
            raise ModelMismatch(str(error)) from None
        self.files = [path]
        inputs = self._session.get_inputs()
        expected = [entry["input_tensor"]["name"]] + [s["input"] for s in entry["states"]]
        if [i.name for i in inputs] != expected:
            raise ModelMismatch(f"{path}: inputs {[i.name for i in inputs]}, manifest says "
                                f"{expected}")
        if inputs[0].shape[1] != ensemble.channels:
            raise ModelMismatch(f"{path}: {inputs[0].shape[1]} input channels, manifest says "
                                f"{ensemble.channels}")
        for given, state in zip(inputs[1:], entry["states"], strict=True):
            if list(given.shape[1:]) != [state["channels"], state["length"]]:
                raise ModelMismatch(f"{path}: state {given.name} shape {given.shape}, manifest "
                                    f"says (batch, {state['channels']}, {state['length']})")
        self._input = inputs[0].name
        self._state_names = expected[1:]
        self._state_shapes = [(s["channels"], s["length"]) for s in entry["states"]]
        self._outputs = [o.name for o in self._session.get_outputs()]
        columns = [entry["mode_keys"].index(key) for key in ensemble.mode_keys]
        self._models = len(columns)
        # every column in graph order needs no gather: the common case costs no copy
        self._columns = slice(None) if columns == list(range(len(entry["mode_keys"]))) \
            else columns
        self._window_length = ensemble.window_length

    def _run(self, samples: np.ndarray, states: list[np.ndarray]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        feed = dict(zip(self._state_names, states, strict=True))
        feed[self._input] = samples
        outputs = self._session.run(self._outputs, feed)
        moments = _check_output(outputs[0][:, self._columns].T, self._models, len(samples),
                                self.name)
        return moments, outputs[1:]

    def prime(self, windows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Whole windows from zero history -> ((models, batch) moments, states to continue)."""
        zeros = [np.zeros((len(windows), *shape), np.float32) for shape in self._state_shapes]
        return self._run(windows, zeros)

    def step(self, samples: np.ndarray, states: list[np.ndarray]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        """(batch, channel, 1) newest samples after ``states`` -> (moments, new states)."""
        return self._run(samples, states)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(batch, channel, time) windows -> (models, batch) moments in N·m/kg."""
        if batch.shape[2] != self._window_length:
            raise ModelMismatch(f"{self.name}: window of {batch.shape[2]} samples, the model "
                                f"takes {self._window_length}")
        return self.prime(batch)[0]


class PyTorchBackend:
    """The torch modules rebuilt from the manifest's architecture and safetensors weights."""

    name = "pytorch"

    def __init__(self, ensemble: EnsembleFiles, options: BackendOptions):
        try:
            import safetensors  # noqa: F401 - the weights' format, checked with torch
            import torch
            from k2muse_model.weights import load_weights
        except ImportError as error:
            raise BackendUnavailable(f"torch or safetensors missing ({error})") from error

        paths = ensemble.paths("torch")
        torch.set_num_threads(options.torch_threads)
        self._torch = torch
        try:
            self._modules = [load_weights(p, ensemble.manifest["architecture"], ensemble.manifest)
                             for p in paths]
        except ArtifactError as error:
            raise ModelMismatch(str(error)) from error
        self.files = paths

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(batch, channel, time) windows -> (models, batch) moments in N·m/kg."""
        with self._torch.inference_mode():
            tensor = self._torch.from_numpy(batch)
            outputs = [module(tensor).numpy() for module in self._modules]
        return _check_output(np.stack(outputs), len(self._modules), len(batch), self.name)


class TensorRTBackend:
    """Serialized TensorRT engines run with cuda-python buffers (GPU machines only, no torch)."""

    name = "tensorrt"

    def __init__(self, ensemble: EnsembleFiles, options: BackendOptions):
        from k2muse_model.tensorrt_runner import (
            TensorRTRunner,
            TensorRTUnavailable,
            require_tensorrt,
        )

        try:
            require_tensorrt()
        except TensorRTUnavailable as error:
            raise BackendUnavailable(str(error)) from error
        paths = ensemble.paths("tensorrt")
        try:
            self._runners = [TensorRTRunner(path) for path in paths]
        except RuntimeError as error:
            raise BackendUnavailable(f"TensorRT cannot load the engines: {error}") from error
        for runner in self._runners:
            if runner.input_name != ensemble.input_name:
                raise ModelMismatch(f"{runner.engine_path}: input tensor {runner.input_name!r}, "
                                    f"the manifest says {ensemble.input_name!r}")
        self.files = [runner.engine_path for runner in self._runners]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(batch, channel, time) windows -> (models, batch) moments in N·m/kg."""
        outputs = [runner(batch) for runner in self._runners]
        return _check_output(np.stack(outputs), len(self._runners), len(batch), self.name)


BACKEND_FACTORIES: dict[str, Callable[[EnsembleFiles, BackendOptions], Backend]] = {
    "onnxruntime_streaming": FusedStreamingBackend,
    "tensorrt": TensorRTBackend,
    "onnxruntime": OnnxRuntimeBackend,
    "pytorch": PyTorchBackend,
}


def fallback_order(requested: str) -> list[str]:
    """Backends to try: the requested one first, then the rest fastest first ("auto": all)."""
    if requested == "auto":
        return list(BACKEND_NAMES)
    if requested not in BACKEND_NAMES:
        raise ValueError(
            f"unknown backend {requested!r}; choose auto, {', '.join(BACKEND_NAMES)}"
        )
    return [requested] + [name for name in BACKEND_NAMES if name != requested]


@dataclass
class Selection:
    """The backend that runs and why the ones before it in the chain did not."""

    backend: Backend
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def describe(self, requested: str) -> str:
        """One log line naming the running backend and every fallback reason."""
        line = f"inference backend: {self.backend.name} (requested {requested})"
        if self.skipped:
            line += "; skipped " + "; ".join(f"{name}: {why}" for name, why in self.skipped)
        return line


def select_backend(
    requested: str,
    ensemble: EnsembleFiles,
    options: BackendOptions,
    factories: dict[str, Callable[[EnsembleFiles, BackendOptions], Backend]] | None = None,
    order: Sequence[str] | None = None,
) -> Selection:
    """Build the first backend of the fallback chain that loads; ModelMismatch is not skipped.

    A model that contradicts its manifest would contradict it on every backend, so it stops the
    search instead of being hidden behind a fallback.
    """
    factories = BACKEND_FACTORIES if factories is None else factories
    skipped: list[tuple[str, str]] = []
    for name in order or fallback_order(requested):
        if name not in factories:  # a caller's own factory table may offer fewer backends
            continue
        try:
            return Selection(factories[name](ensemble, options), skipped)
        except BackendUnavailable as error:
            skipped.append((name, str(error)))
    reasons = "; ".join(f"{name}: {why}" for name, why in skipped)
    raise BackendUnavailable(f"no inference backend could load the ensemble ({reasons})")
