"""The torch-free model-folder contract on tampered copies of a folder written to its format.

The model files hold placeholder bytes: the contract checks the manifest, the paths and the
checksums, never the models themselves (the readers in k2muse_inference do, and their tests
use folders written by k2muse_learning).
"""

import json
import shutil

import pytest
from k2muse_model.model_folder import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    ArtifactError,
    check_recorded_facts,
    model_file,
    recorded_facts,
    sha256_of,
    verify_folder,
)

MODE_KEYS = ("LG_0", "AS_5", "DS_5")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A manifest listing a torch and an onnx_sim file per mode, with their sha256."""
    folder = tmp_path_factory.mktemp("model") / "contract"
    models, digests = [], {}
    for key in MODE_KEYS:
        files = {"torch": f"torch/{key}.safetensors", "onnx_sim": f"onnx_sim/{key}.onnx"}
        for relative in files.values():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"{key} {relative}".encode() * 10)
            digests[relative] = sha256_of(path)
        models.append({"mode_key": key, "files": files})
    manifest = {
        "format": MANIFEST_FORMAT, "format_version": 1, "sample_rate_hz": 100.0,
        "window_length": 100,
        "inputs": [{"name": "hip_angle", "unit": "rad"},
                   {"name": "hip_velocity", "unit": "rad/s"}],
        "input_tensor": {"name": "hip_window"}, "output_tensor": {"name": "hip_moment"},
        "architecture": {"kind": "tcn", "input_channels": 2, "channels": 16, "levels": 4,
                         "kernel_size": 4, "dropout": 0.1},
        "models": models, "sha256": digests,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def tampered(model_folder, tmp_path, change=None):
    folder = tmp_path / "tampered"
    shutil.copytree(model_folder, folder)
    if change is not None:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        change(manifest)
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def test_intact_folder_verifies_and_resolves_its_files(model_folder):
    manifest = verify_folder(model_folder)
    assert manifest["window_length"] == 100 and len(manifest["models"]) == 3
    assert model_file(model_folder, manifest, "AS_5", "onnx_sim") == \
        model_folder / "onnx_sim" / "AS_5.onnx"
    with pytest.raises(ArtifactError, match=r"model AS_5 has no tensorrt file \(has \['onnx_sim'"):
        model_file(model_folder, manifest, "AS_5", "tensorrt")
    with pytest.raises(ArtifactError, match=r"no model for mode 'ST_0'"):
        model_file(model_folder, manifest, "ST_0", "torch")


def test_symlink_leading_out_of_the_folder_is_refused(model_folder, tmp_path):
    folder = tampered(model_folder, tmp_path)
    outside = tmp_path / "outside.onnx"
    target = folder / "onnx_sim" / "LG_0.onnx"
    shutil.copy(target, outside)  # same bytes: the checksum alone would accept it
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(ArtifactError, match="resolves outside the model folder"):
        verify_folder(folder)


def test_changed_or_missing_file_is_refused(model_folder, tmp_path):
    folder = tampered(model_folder, tmp_path)
    (folder / "torch" / "DS_5.safetensors").write_bytes(b"replaced")
    with pytest.raises(ArtifactError, match="DS_5.safetensors: sha256 mismatch"):
        verify_folder(folder)
    (folder / "torch" / "DS_5.safetensors").unlink()
    with pytest.raises(ArtifactError, match="listed in the manifest but missing"):
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
    (lambda m: m["sha256"].update({"../x.onnx": "0" * 64}), "leaves the model folder"),
    (lambda m: m["models"][1].update(mode_key="LG_0"), "unique mode_key"),
    (lambda m: m["sha256"].pop("torch/AS_5.safetensors"), "has no sha256 entry"),
    (lambda m: m.update(format_version=2), "format_version 2 is not supported"),
])
def test_schema_refuses_before_loading_anything(model_folder, tmp_path, change, message):
    with pytest.raises(ArtifactError, match=message):
        verify_folder(tampered(model_folder, tmp_path, change))


def test_deeply_nested_json_is_one_error(model_folder, tmp_path):
    folder = tampered(model_folder, tmp_path)
    (folder / MANIFEST_NAME).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ArtifactError, match="JSON nested too deeply"):
        verify_folder(folder)
    (folder / MANIFEST_NAME).write_bytes(b" " * (2 << 20))
    with pytest.raises(ArtifactError, match="a manifest is at most"):
        verify_folder(folder)


def test_recorded_facts_that_contradict_the_manifest_are_refused(model_folder):
    manifest = verify_folder(model_folder)
    recorded = recorded_facts(manifest)
    check_recorded_facts(model_folder / "x.onnx", manifest, recorded)
    check_recorded_facts(model_folder / "x.onnx", manifest, {})  # older files: not checked
    recorded["k2muse.sample_rate_hz"] = "50.0"
    with pytest.raises(ArtifactError, match="exported with sample_rate_hz 50.0, but the "
                                            "manifest says 100.0"):
        check_recorded_facts(model_folder / "x.onnx", manifest, recorded)
