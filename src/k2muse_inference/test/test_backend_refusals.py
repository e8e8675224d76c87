"""Model folders the contract accepts but the backends refuse, and the lean import chain."""

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest
from k2muse_inference.backends import BackendOptions, ModelMismatch, select_backend
from k2muse_inference.model import Expectations, load_model_spec
from k2muse_model.model_folder import sha256_of


def tampered(model_folder, tmp_path, change=None):
    folder = tmp_path / "tampered"
    shutil.copytree(model_folder, folder)
    if change is not None:
        manifest = json.loads((folder / "manifest.json").read_text())
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_estimator_modules_import_without_the_training_stack():
    modules = ["model", "backends", "estimator"]
    if importlib.util.find_spec("rclpy") is not None:
        modules.append("estimator_node")
    code = (f"import sys, {', '.join('k2muse_inference.' + m for m in modules)}; "
            "print(sorted(m for m in ('torch', 'onnx', 'safetensors', 'k2muse_learning') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_non_onnx_file_listed_as_onnx_refuses_the_backend(model_folder, tmp_path):
    def replace(manifest):
        manifest["sha256"]["onnx_sim/LG_0.onnx"] = sha256_of(fake)

    folder = tampered(model_folder, tmp_path)
    fake = folder / "onnx_sim" / "LG_0.onnx"
    fake.write_bytes(b"not a protobuf at all" * 20)
    folder = tampered(folder, tmp_path / "again", replace)
    spec = load_model_spec(folder, Expectations())
    with pytest.raises(ModelMismatch, match=r"LG_0\.onnx: not a loadable ONNX model"):
        select_backend("onnxruntime", spec.ensemble, BackendOptions())


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["inputs"].reverse(), r"exported with inputs \["),
    (lambda m: m.update(sample_rate_hz=50.0), "exported with sample_rate_hz 100.0"),
])
def test_manifest_edits_that_keep_checksums_contradict_the_model_files(
        model_folder, tmp_path, change, message):
    spec = load_model_spec(tampered(model_folder, tmp_path, change), Expectations())
    for backend in ("onnxruntime", "pytorch"):
        with pytest.raises(ModelMismatch, match=message):
            select_backend(backend, spec.ensemble, BackendOptions())


def test_tensorrt_and_onnxruntime_backends_load_without_torch_or_training_code(model_folder):
    """Building the backends the device uses must not pull in the training stack."""
    code = f"""
import sys
from k2muse_inference.backends import BackendOptions, BackendUnavailable, TensorRTBackend
from k2muse_inference.backends import select_backend
from k2muse_inference.model import Expectations, load_model_spec
import k2muse_inference.estimator, k2muse_model.tensorrt_runner

ensemble = load_model_spec({str(model_folder)!r}, Expectations()).ensemble
try:
    TensorRTBackend(ensemble, BackendOptions())
except BackendUnavailable:
    pass
select_backend("onnxruntime", ensemble, BackendOptions())
print(sorted(m for m in ("torch", "onnx", "safetensors", "onnxslim", "k2muse_learning")
             if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
