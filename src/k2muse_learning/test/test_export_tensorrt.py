"""TensorRT engine build and parity: runs only where tensorrt imports and a GPU exists."""

import pytest
from k2muse_learning.artifacts import load_torch_models
from k2muse_learning.export import check_parity
from k2muse_learning.tcn_demo import gait_like_windows, write_demo_model_folder

from k2muse_learning import trt


def test_trtexec_command_matches_the_python_build_profile():
    command = trt.trtexec_command("m/onnx_sim/LG_0.onnx", "m/trt/LG_0_fp16.engine", "fp16", 2,
                                  100, max_batch=64)
    assert command.startswith("trtexec --onnx=m/onnx_sim/LG_0.onnx")
    assert "--saveEngine=m/trt/LG_0_fp16.engine --fp16" in command
    assert "--minShapes=hip_window:1x2x100" in command
    assert "--maxShapes=hip_window:64x2x100" in command
    assert "--fp16" not in trt.trtexec_command("a.onnx", "b.engine", "fp32", 1, 80)


def test_runner_refuses_clearly_without_tensorrt(tmp_path):
    if trt.tensorrt_available():
        pytest.skip("TensorRT is available here")
    with pytest.raises(trt.TensorRTUnavailable):
        trt.TensorRTRunner(tmp_path / "missing.engine")


@pytest.mark.gpu
@pytest.mark.skipif(not trt.tensorrt_available(), reason="needs tensorrt, cuda-python and a GPU")
@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-4), ("fp16", 5e-2)])
def test_tensorrt_engine_matches_pytorch(tmp_path, precision, tolerance):
    folder = write_demo_model_folder(tmp_path / "m")
    _, models = load_torch_models(folder)
    engine = trt.build_engine(folder / "onnx_sim" / "LG_0.onnx", tmp_path / "e.engine",
                              precision, 2, 100)
    runner = trt.TensorRTRunner(engine)
    windows = gait_like_windows(200, 100, seed=2)
    assert check_parity(models["LG_0"], runner, windows, tolerance) < tolerance
    assert runner(windows[:1]).shape == (1, 1)


@pytest.mark.gpu
@pytest.mark.skipif(not trt.tensorrt_available(), reason="needs tensorrt, cuda-python and a GPU")
def test_streaming_engine_matches_onnxruntime(tmp_path):
    import json

    from k2muse_learning.streaming import OnnxStreamingRunner, stream_sequence

    folder = write_demo_model_folder(tmp_path / "m", mode_keys=("LG_0", "AS_5", "DS_5"))
    entry = json.loads((folder / "manifest.json").read_text())["fused_streaming"]
    engine = trt.build_streaming_engine(folder / entry["file"], tmp_path / "s.engine", "fp32",
                                        entry, 2, 100)
    gpu = trt.TensorRTStreamingRunner(engine, entry)
    cpu = OnnxStreamingRunner(folder / entry["file"])
    sequence = gait_like_windows(1, 300, seed=4)[0]
    on_gpu = stream_sequence(gpu.step, gpu.prime, sequence, 100)
    on_cpu = stream_sequence(cpu.step, cpu.prime, sequence, 100)
    assert on_gpu.shape == (201, 3)
    assert abs(on_gpu - on_cpu).max() <= 1e-5
