"""The TensorRT runner: IO bookkeeping without a GPU and clear refusals."""

import sys
import types

import numpy as np
import pytest
from k2muse_model.tensorrt_runner import (
    DeviceBuffers,
    TensorRTRunner,
    TensorRTUnavailable,
    TensorSpec,
    check_tensor_names,
    tensorrt_available,
)

needs_no_gpu = pytest.mark.skipif(tensorrt_available(),
                                  reason="TensorRT and a GPU are here: the refusal is not taken")


class FakeDevice:
    """Hands out distinct addresses and records what is live, like cudaMalloc/cudaFree."""

    def __init__(self):
        self.live: dict[int, int] = {}
        self.next_address = 0x1000

    def allocate(self, nbytes):
        address, self.next_address = self.next_address, self.next_address + nbytes + 256
        self.live[address] = nbytes
        return address

    def free(self, address):
        del self.live[address]  # a double free raises KeyError


def test_buffers_are_reused_grown_and_released():
    device = FakeDevice()
    buffers = DeviceBuffers(device.allocate, device.free)
    first = buffers.address("hip_window", 4 * 2 * 100)
    assert buffers.address("hip_window", 4 * 2 * 100) == first
    assert buffers.address("hip_window", 4 * 2 * 50) == first  # a smaller batch fits
    grown = buffers.address("hip_window", 4 * 2 * 100 * 8)
    assert grown != first and device.live == {grown: 6400}
    output = buffers.address("hip_moment", 4 * 8)
    assert set(device.live) == {grown, output}
    buffers.release()
    assert device.live == {}


def test_empty_tensor_still_gets_a_valid_address():
    device = FakeDevice()
    assert DeviceBuffers(device.allocate, device.free).address("x", 0) in device.live


def test_host_array_takes_the_engine_dtype_and_rank():
    spec = TensorSpec("hip_window", True, np.dtype(np.float32), 3)
    windows = np.arange(2 * 2 * 5, dtype=np.float64).reshape(2, 5, 2).transpose(0, 2, 1)
    host = spec.host_array(windows)
    assert host.dtype == np.float32 and host.flags.c_contiguous
    np.testing.assert_array_equal(host, windows)
    with pytest.raises(ValueError, match="'hip_window' takes 3 dimensions, got an array of shape"):
        spec.host_array(windows[0])


def test_tensor_names_must_match_the_manifest():
    specs = [TensorSpec("samples", True, np.dtype(np.float32), 3),
             TensorSpec("state_0_in", True, np.dtype(np.float32), 3),
             TensorSpec("moments", False, np.dtype(np.float32), 2),
             TensorSpec("state_0_out", False, np.dtype(np.float32), 3)]
    check_tensor_names(specs, ["state_0_in", "samples"], ["moments", "state_0_out"], "s.engine")
    with pytest.raises(RuntimeError, match=r"s.engine: engine has inputs \['samples', "
                                           r"'state_0_in'\] and outputs"):
        check_tensor_names(specs, ["samples"], ["moments", "state_0_out"], "s.engine")


@needs_no_gpu
def test_runner_without_tensorrt_refuses_in_one_line(tmp_path):
    with pytest.raises(TensorRTUnavailable) as refused:
        TensorRTRunner(tmp_path / "LG_0.engine")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("the tensorrt Python module is not installed") or \
        "cuda-python" in message or "no CUDA device" in message


@needs_no_gpu
def test_runner_without_cuda_python_names_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setitem(sys.modules, "cuda", None)  # import cuda... raises ImportError
    with pytest.raises(TensorRTUnavailable, match=r"^cuda-python is not installed \(pip install "
                                                  r"cuda-python\); the TensorRT runner needs"):
        TensorRTRunner(tmp_path / "LG_0.engine")
    assert not tensorrt_available()
