"""The torch-free model-folder contract on tampered copies of a real model folder."""

import importlib.util
import json
import shutil
import subprocess
import sys
import time

import pytest
from k2muse_inference.backends import BackendOptions, ModelMismatch, select_backend
from k2muse_inference.model import Expectations, load_model_spec
from k2muse_inference.model_folder import ArtifactError, sha256_of, verify_folder


def tampered(model_folder, tmp_path, change=None):
    folder = tmp_path / "tampered"
    shutil.copytree(model_folder, folder)
    if change is not None:
        manifest = json.loads((folder / "manifest.json").read_text())
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_estimator_modules_import_without_the_training_stack():
    modules = ["model_folder", "model", "backends", "estimator"]
    if importlib.util.find_spec("rclpy") is not None:
        modules.append("estimator_node")
    code = (f"import sys, {', '.join('k2muse_inference.' + m for m in modules)}; "
            "print(sorted(m for m in ('torch', 'onnx', 'safetensors', 'k2muse_learning') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_intact_folder_verifies(model_folder):
    manifest = verify_folder(model_folder)
    assert manifest["window_length"] == 100 and len(manifest["models"]) == 3


def test_symlink_leading_out_of_the_folder_is_refused(model_folder, tmp_path):
    folder = tampered(model_folder, tmp_path)
    outside = tmp_path / "outside.onnx"
    target = folder / "onnx_sim" / "LG_0.onnx"
    shutil.copy(target, outside)  # same bytes: the checksum alone would accept it
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(ArtifactError, match="resolves outside the model folder"):
        verify_folder(folder)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["models"][0]["files"].update(onnx=["onnx/LG_0.onnx"]),
     "files must map .* to path strings"),
    (lambda m: m.update(window_length=80), r"receptive field \(91 samples\) exceeds "
                                           "window_length 80"),
    (lambda m: m["architecture"].update(channels=4_000_000), "channels must be an integer in "
                                                             r"1\.\.4096"),
    (lambda m: m.update(sample_rate_hz=float("nan")), "sample_rate_hz must be a number"),
    (lambda m: m.update(window_length=True), "window_length must be an integer"),
    (lambda m: m["inputs"].append(m["inputs"][0]), "distinct known channels"),
    (lambda m: m["sha256"].update({"/etc/passwd": "0" * 64}), "leaves the model folder"),
])
def test_schema_refuses_before_loading_anything(model_folder, tmp_path, change, message):
    folder = tampered(model_folder, tmp_path, change)
    start = time.perf_counter()
    with pytest.raises(ArtifactError, match=message):
        load_model_spec(folder, Expectations())
    assert time.perf_counter() - start < 30.0  # no 256 TB allocation was attempted


def test_deeply_nested_json_is_one_error(model_folder, tmp_path):
    folder = tampered(model_folder, tmp_path)
    (folder / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ArtifactError, match="JSON nested too deeply"):
        verify_folder(folder)
    (folder / "manifest.json").write_bytes(b" " * (2 << 20))
    with pytest.raises(ArtifactError, match="a manifest is at most"):
        verify_folder(folder)


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

