"""TensorRT engine build (Python API) and runner, guarded: usable only where TensorRT and CUDA are.

Device buffers are torch CUDA tensors (no pycuda). Uses the name-based tensor API
(set_input_shape / set_tensor_address / execute_async_v3) present in TensorRT 8.5 and later,
which covers JetPack 5.1+/6.x and desktop TensorRT 10.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from k2muse_learning.export import INPUT_TENSOR, OUTPUT_TENSOR, atomic_write_bytes

try:  # optional: TensorRT exists only on GPU machines
    import tensorrt as trt
except ImportError:  # pragma: no cover - depends on the machine
    trt = None

PRECISIONS = ("fp32", "fp16")


class TensorRTUnavailable(RuntimeError):
    """TensorRT or a CUDA device is missing on this machine."""


def tensorrt_available() -> bool:
    """True where the tensorrt module imports and torch sees a CUDA device."""
    return trt is not None and torch.cuda.is_available()


def _require_tensorrt() -> None:
    if trt is None:
        raise TensorRTUnavailable("the tensorrt Python module is not installed")
    if not torch.cuda.is_available():
        raise TensorRTUnavailable("no CUDA device visible to torch")


def trtexec_command(onnx_path: str | os.PathLike, engine_path: str | os.PathLike,
                    precision: str, input_channels: int, window_length: int,
                    max_batch: int = 64) -> str:
    """Return the trtexec command that builds the same engine as build_engine()."""
    shape = f"x{input_channels}x{window_length}"
    flag = " --fp16" if precision == "fp16" else ""
    return (f"trtexec --onnx={onnx_path} --saveEngine={engine_path}{flag}"
            f" --minShapes={INPUT_TENSOR}:1{shape} --optShapes={INPUT_TENSOR}:1{shape}"
            f" --maxShapes={INPUT_TENSOR}:{max_batch}{shape}")


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike,
                 precision: str, input_channels: int, window_length: int,
                 max_batch: int = 64, workspace_mb: int = 256) -> Path:
    """Build a serialized engine from a (dynamic-batch) ONNX file with the Python API."""
    shape = (input_channels, window_length)
    return _build(onnx_path, engine_path, precision,
                  {INPUT_TENSOR: ((1, *shape), (1, *shape), (max_batch, *shape))}, workspace_mb)


def build_streaming_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike,
                           precision: str, manifest_entry: dict, input_channels: int,
                           window_length: int, max_batch: int = 4,
                           workspace_mb: int = 256) -> Path:
    """Engine of the fused streaming graph (``fused_streaming`` manifest entry).

    The optimisation profile spans one new sample (a step, two legs being typical) to a whole
    window (priming), batch 1..max_batch, with every state tensor at its fixed size.
    """
    samples = manifest_entry["input_tensor"]["name"]
    shapes = {samples: ((1, input_channels, 1), (2, input_channels, 1),
                        (max_batch, input_channels, window_length))}
    for state in manifest_entry["states"]:
        size = (state["channels"], state["length"])
        shapes[state["input"]] = ((1, *size), (2, *size), (max_batch, *size))
    return _build(onnx_path, engine_path, precision, shapes, workspace_mb)


def _build(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, precision: str,
           shapes: dict[str, tuple[tuple[int, ...], ...]], workspace_mb: int) -> Path:
    """Parse ONNX, add one optimisation profile (min, opt, max per input) and serialize."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    _require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    explicit = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(explicit)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    else:  # fp32 means fp32: no TF32 convolutions on Ampere and later
        config.clear_flag(trt.BuilderFlag.TF32)
    profile = builder.create_optimization_profile()
    for name, (low, typical, high) in shapes.items():
        profile.set_shape(name, low, typical, high)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    engine_path = Path(engine_path)
    atomic_write_bytes(engine_path, bytes(serialized))
    return engine_path


def _load_engine(engine_path: Path):
    """Deserialize an engine file (TensorRT and a GPU required)."""
    _require_tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise RuntimeError(f"TensorRT could not deserialize {engine_path}")
    return engine


class TensorRTRunner:
    """Engine file -> callable on a float32 (batch, channel, time) numpy array -> (batch, 1)."""

    def __init__(self, engine_path: str | os.PathLike, device: int = 0):
        self.engine_path = Path(engine_path)
        self.engine = _load_engine(self.engine_path)
        self.device = torch.device("cuda", device)
        names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        if names != {INPUT_TENSOR, OUTPUT_TENSOR}:
            raise RuntimeError(f"{self.engine_path}: expected tensors "
                               f"{INPUT_TENSOR}/{OUTPUT_TENSOR}, found {sorted(names)}")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(device=self.device)
        self.fixed_batch = None

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Estimate hip moment (N·m/kg) for each window: (batch, 1)."""
        host = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        with torch.cuda.stream(self.stream):  # copy, run and copy back on one stream
            inputs = host.to(self.device)
            outputs = torch.empty((host.shape[0], 1), dtype=torch.float32, device=self.device)
            self.context.set_input_shape(INPUT_TENSOR, tuple(host.shape))
            self.context.set_tensor_address(INPUT_TENSOR, inputs.data_ptr())
            self.context.set_tensor_address(OUTPUT_TENSOR, outputs.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"TensorRT execution failed for {self.engine_path}")
            result = outputs.cpu()
        self.stream.synchronize()
        return result.numpy()


class TensorRTStreamingRunner:
    """Engine of the fused streaming graph as prime/step calls on numpy arrays.

    Same calls as ``k2muse_learning.streaming.OnnxStreamingRunner``: ``prime(windows)`` from
    zero states and ``step(samples, states)``, each returning ((batch, models), states).
    """

    def __init__(self, engine_path: str | os.PathLike, manifest_entry: dict, device: int = 0):
        self.engine_path = Path(engine_path)
        self.engine = _load_engine(self.engine_path)
        self.device = torch.device("cuda", device)
        self.samples = manifest_entry["input_tensor"]["name"]
        self.output = manifest_entry["output_tensor"]["name"]
        self.states = manifest_entry["states"]
        expected = {self.samples, self.output, *(s["input"] for s in self.states),
                    *(s["output"] for s in self.states)}
        names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        if names != expected:
            raise RuntimeError(f"{self.engine_path}: tensors {sorted(names)}, the manifest "
                               f"says {sorted(expected)}")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(device=self.device)

    def prime(self, windows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Windows (batch, channel, time) from zero states -> ((batch, models), states)."""
        zeros = [np.zeros((len(windows), s["channels"], s["length"]), np.float32)
                 for s in self.states]
        return self.step(windows, zeros)

    def step(self, samples: np.ndarray, states: list[np.ndarray]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        """New samples (batch, channel, time) after ``states`` -> ((batch, models), states)."""
        feeds = {self.samples: samples, **{s["input"]: v for s, v in zip(self.states, states,
                                                                          strict=True)}}
        with torch.cuda.stream(self.stream):
            keep = []  # device tensors stay alive until the copies back are done
            for name, array in feeds.items():
                tensor = torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(
                    self.device)
                keep.append(tensor)
                self.context.set_input_shape(name, tuple(tensor.shape))
                self.context.set_tensor_address(name, tensor.data_ptr())
            outputs = {}
            for name in [self.output, *(s["output"] for s in self.states)]:
                shape = tuple(self.context.get_tensor_shape(name))
                outputs[name] = torch.empty(shape, dtype=torch.float32, device=self.device)
                self.context.set_tensor_address(name, outputs[name].data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"TensorRT execution failed for {self.engine_path}")
            host = {name: tensor.cpu() for name, tensor in outputs.items()}
        self.stream.synchronize()
        return (host[self.output].numpy(),
                [host[s["output"]].numpy() for s in self.states])
