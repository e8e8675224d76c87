"""Run serialized TensorRT engines on numpy arrays, with cuda-python for memory and the stream.

The on-device estimator needs neither torch nor the training package for this: device buffers
come from ``cudaMalloc`` and every copy and the engine itself run on one CUDA stream created
with ``cudaStreamCreate``. The engine is driven through TensorRT's name-based tensor API
(``num_io_tensors``, ``get_tensor_name``, ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``), present from TensorRT 8.5 and the only one left in TensorRT 10, so
JetPack 6 and desktop TensorRT 10 run the same code.

TensorRT and cuda-python are imported when a runner is built, never at import time: on a
machine without them this module still imports and a runner raises ``TensorRTUnavailable``
with a one-line reason.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class TensorRTUnavailable(RuntimeError):
    """TensorRT, cuda-python or a CUDA device is missing on this machine."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor of an engine: its name, direction, element type and rank."""

    name: str
    is_input: bool
    dtype: np.dtype
    rank: int

    def host_array(self, values: np.ndarray) -> np.ndarray:
        """``values`` as the C-contiguous array of the engine's element type TensorRT reads."""
        array = np.ascontiguousarray(values, dtype=self.dtype)
        if array.ndim != self.rank:
            raise ValueError(f"tensor {self.name!r} takes {self.rank} dimensions, got an array "
                             f"of shape {array.shape}")
        return array


def check_tensor_names(specs: Sequence[TensorSpec], inputs: Sequence[str],
                       outputs: Sequence[str], where: str) -> None:
    """Refuse an engine whose input or output tensor names are not the expected ones."""
    found_in = sorted(s.name for s in specs if s.is_input)
    found_out = sorted(s.name for s in specs if not s.is_input)
    if found_in != sorted(inputs) or found_out != sorted(outputs):
        raise RuntimeError(f"{where}: engine has inputs {found_in} and outputs {found_out}, "
                           f"expected inputs {sorted(inputs)} and outputs {sorted(outputs)}")


class DeviceBuffers:
    """One device allocation per tensor name, reused across calls and grown when too small.

    ``allocate(nbytes) -> address`` and ``free(address)`` do the CUDA work, so the
    bookkeeping is the same whatever allocates.
    """

    def __init__(self, allocate: Callable[[int], int], free: Callable[[int], None]):
        self._allocate = allocate
        self._free = free
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (address, capacity bytes)

    def address(self, name: str, nbytes: int) -> int:
        """Device address of at least ``nbytes`` (at least 1) for tensor ``name``."""
        nbytes = max(int(nbytes), 1)
        address, capacity = self._buffers.get(name, (0, 0))
        if capacity >= nbytes:
            return address
        if capacity:
            del self._buffers[name]
            self._free(address)
        address = self._allocate(nbytes)
        self._buffers[name] = (address, nbytes)
        return address

    def release(self) -> None:
        """Free every buffer (the runner is closed or being collected)."""
        buffers, self._buffers = self._buffers, {}
        for address, _ in buffers.values():
            self._free(address)


def _import_cudart():
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (12.6+) or ``cuda.cudart``."""
    try:
        return importlib.import_module("cuda.bindings.runtime")
    except ImportError:
        return importlib.import_module("cuda.cudart")


@functools.cache
def _libraries():
    """(tensorrt, cudart) or TensorRTUnavailable naming what is missing, checked once."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as error:
        raise TensorRTUnavailable(f"the tensorrt Python module is not installed ({error})") \
            from None
    try:
        cudart = _import_cudart()
    except ImportError as error:
        raise TensorRTUnavailable("cuda-python is not installed (pip install cuda-python); "
                                  f"the TensorRT runner needs it for device memory ({error})") \
            from None
    error, count = cudart.cudaGetDeviceCount()
    if error != cudart.cudaError_t.cudaSuccess:
        raise TensorRTUnavailable(f"no CUDA device visible (cudaGetDeviceCount: "
                                  f"{getattr(error, 'name', error)})")
    if count < 1:
        raise TensorRTUnavailable("no CUDA device visible (cudaGetDeviceCount: 0 devices)")
    return trt, cudart


def tensorrt_available() -> bool:
    """True where tensorrt and cuda-python import and a CUDA device is visible."""
    try:
        _libraries()
    except TensorRTUnavailable:
        return False
    return True


def require_tensorrt():
    """The tensorrt module, or TensorRTUnavailable with a one-line reason."""
    return _libraries()[0]


@functools.cache
def tensorrt_logger():
    """The process's one TensorRT logger (builders and runtimes share it), warnings and up."""
    trt = require_tensorrt()
    return trt.Logger(trt.Logger.WARNING)


class EngineRunner:
    """A deserialized engine that maps named numpy inputs to named numpy outputs on the GPU."""

    def __init__(self, engine_path: str | os.PathLike, device: int = 0):
        trt, self._cudart = _libraries()
        self.engine_path = Path(engine_path)
        self._call(self._cudart.cudaSetDevice(device), "cudaSetDevice")
        runtime = trt.Runtime(tensorrt_logger())
        self.engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {self.engine_path}")
        self.tensors = [
            TensorSpec(name=name,
                       is_input=self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                       dtype=np.dtype(trt.nptype(self.engine.get_tensor_dtype(name))),
                       rank=len(self.engine.get_tensor_shape(name)))
            for name in (self.engine.get_tensor_name(i)
                         for i in range(self.engine.num_io_tensors))]
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise RuntimeError(f"TensorRT could not create an execution context for "
                               f"{self.engine_path}")
        self._stream = self._call(self._cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._buffers = DeviceBuffers(
            lambda nbytes: self._call(self._cudart.cudaMalloc(nbytes), "cudaMalloc"),
            lambda address: self._call(self._cudart.cudaFree(address), "cudaFree"))

    def _call(self, result: tuple, what: str):
        """Unpack a cuda-python (error, value...) tuple; raise on an error code."""
        error, *values = result
        if error != self._cudart.cudaError_t.cudaSuccess:
            raise RuntimeError(f"{what} failed for {self.engine_path}: "
                               f"{getattr(error, 'name', error)}")
        return values[0] if len(values) == 1 else None

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy the inputs in, run the engine, copy every output back, all on one stream."""
        cudart, stream = self._cudart, self._stream
        to_device = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        to_host = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        hosts = {}  # host arrays stay referenced until the stream is synchronized
        for spec in (s for s in self.tensors if s.is_input):
            host = spec.host_array(feeds[spec.name])
            if not self.context.set_input_shape(spec.name, host.shape):
                raise ValueError(f"{self.engine_path}: shape {host.shape} of {spec.name!r} is "
                                 "outside the engine's optimisation profile")
            address = self._buffers.address(spec.name, host.nbytes)
            self._call(cudart.cudaMemcpyAsync(address, host.ctypes.data, host.nbytes, to_device,
                                              stream), "cudaMemcpyAsync")
            self.context.set_tensor_address(spec.name, address)
            hosts[spec.name] = host
        outputs = {}
        for spec in (s for s in self.tensors if not s.is_input):
            shape = tuple(self.context.get_tensor_shape(spec.name))
            if any(size < 0 for size in shape):
                raise RuntimeError(f"{self.engine_path}: output {spec.name!r} shape {shape} is "
                                   "unresolved (an input shape is missing)")
            host = np.empty(shape, spec.dtype)
            address = self._buffers.address(spec.name, host.nbytes)
            self.context.set_tensor_address(spec.name, address)
            outputs[spec.name] = (host, address)
        if not self.context.execute_async_v3(int(stream)):
            raise RuntimeError(f"TensorRT execution failed for {self.engine_path}")
        for host, address in outputs.values():
            self._call(cudart.cudaMemcpyAsync(host.ctypes.data, address, host.nbytes, to_host,
                                              stream), "cudaMemcpyAsync")
        self._call(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        return {name: host for name, (host, _) in outputs.items()}

    def close(self) -> None:
        """Free the device buffers and the stream (also done when the runner is collected)."""
        buffers, self._buffers = getattr(self, "_buffers", None), None
        if buffers is not None:
            buffers.release()
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            self._cudart.cudaStreamDestroy(stream)

    def __del__(self) -> None:
        try:
            self.close()
        except RuntimeError:  # CUDA may already be unloaded at interpreter exit
            pass


class TensorRTRunner:
    """Engine of one windowed model: float32 (batch, channel, time) -> (batch, 1) moments."""

    def __init__(self, engine_path: str | os.PathLike, device: int = 0):
        self._engine = EngineRunner(engine_path, device)
        self.engine_path = self._engine.engine_path
        inputs = [s.name for s in self._engine.tensors if s.is_input]
        outputs = [s.name for s in self._engine.tensors if not s.is_input]
        if len(inputs) != 1 or len(outputs) != 1:
            raise RuntimeError(f"{self.engine_path}: expected one input and one output tensor, "
                               f"found inputs {inputs} and outputs {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Estimate hip moment (N·m/kg) for each window: (batch, 1)."""
        return self._engine.run({self.input_name: windows})[self.output_name]


class TensorRTStreamingRunner:
    """Engine of the fused streaming graph as prime/step calls on numpy arrays.

    Same calls as ``k2muse_learning.streaming.OnnxStreamingRunner``: ``prime(windows)`` from
    zero states and ``step(samples, states)``, each returning ((batch, models), states).
    """

    def __init__(self, engine_path: str | os.PathLike, manifest_entry: Mapping,
                 device: int = 0):
        self._engine = EngineRunner(engine_path, device)
        self.engine_path = self._engine.engine_path
        self.samples = manifest_entry["input_tensor"]["name"]
        self.output = manifest_entry["output_tensor"]["name"]
        self.states = list(manifest_entry["states"])
        check_tensor_names(self._engine.tensors,
                           [self.samples, *(s["input"] for s in self.states)],
                           [self.output, *(s["output"] for s in self.states)],
                           str(self.engine_path))

    def prime(self, windows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Windows (batch, channel, time) from zero states -> ((batch, models), states)."""
        zeros = [np.zeros((len(windows), s["channels"], s["length"]), np.float32)
                 for s in self.states]
        return self.step(windows, zeros)

    def step(self, samples: np.ndarray, states: Sequence[np.ndarray]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        """New samples (batch, channel, time) after ``states`` -> ((batch, models), states)."""
        feeds = {self.samples: samples,
                 **{s["input"]: v for s, v in zip(self.states, states, strict=True)}}
        outputs = self._engine.run(feeds)
        return outputs[self.output], [outputs[s["output"]] for s in self.states]
