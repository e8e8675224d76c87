"""TensorRT engine build (Python API), an offline export step: usable where TensorRT and CUDA are.

Engines are run - for the export's parity check as on the device - by the model
contract's runner (``k2muse_model.tensorrt_runner``, cuda-python buffers, no torch), which
this module re-exports so export and report code keep one import.
"""

from __future__ import annotations

import os
from pathlib import Path

from k2muse_model.tensorrt_runner import (
    TensorRTRunner,
    TensorRTStreamingRunner,
    TensorRTUnavailable,
    require_tensorrt,
    tensorrt_available,
    tensorrt_logger,
)

from k2muse_learning.export import INPUT_TENSOR, atomic_write_bytes

__all__ = ["PRECISIONS", "TensorRTRunner", "TensorRTStreamingRunner", "TensorRTUnavailable",
           "build_engine", "build_streaming_engine", "tensorrt_available", "trtexec_command"]

PRECISIONS = ("fp32", "fp16")


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
    trt = require_tensorrt()
    logger = tensorrt_logger()
    builder = trt.Builder(logger)
    network = builder.create_network(_explicit_batch_flags(trt))
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


def _explicit_batch_flags(trt) -> int:
    """Network flags: explicit batch, which TensorRT 10 always uses and no longer names."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    return 0 if flag is None else 1 << int(flag)
