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
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_TENSOR, (1, input_channels, window_length),
                      (1, input_channels, window_length),
                      (max_batch, input_channels, window_length))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    engine_path = Path(engine_path)
    atomic_write_bytes(engine_path, bytes(serialized))
    return engine_path


class TensorRTRunner:
    """Engine file -> callable on a float32 (batch, channel, time) numpy array -> (batch, 1)."""

    def __init__(self, engine_path: str | os.PathLike, device: int = 0):
        _require_tensorrt()
        self.engine_path = Path(engine_path)
        self.device = torch.device("cuda", device)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {self.engine_path}")
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
