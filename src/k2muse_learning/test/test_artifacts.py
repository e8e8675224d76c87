import json

import pytest
import torch
from k2muse_learning.artifacts import ArtifactError, load_manifest, load_torch_models
from k2muse_learning.export import OnnxRuntimeRunner, predict
from k2muse_learning.tcn_demo import gait_like_windows, write_demo_model_folder
from safetensors.torch import load_file, save_file

from k2muse_learning import artifacts

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_demo_model_folder(tmp_path_factory.mktemp("models") / "demo",
                                   mode_keys=("LG_0", "AS_5"), window_length=96)


def copy_of(folder, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def rewrite_manifest(folder, change):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_folder_layout_and_manifest_contract(folder):
    manifest = load_manifest(folder)
    assert manifest["format"] == "k2muse-tcn-ensemble" and manifest["format_version"] == 1
    assert manifest["window_length"] == 96 and manifest["sample_rate_hz"] == 100.0
    assert [i["name"] for i in manifest["inputs"]] == ["hip_angle", "hip_velocity"]
    assert manifest["output_tensor"]["unit"] == "N*m/kg"
    for key in ("LG_0", "AS_5"):
        for rel in (f"torch/{key}.safetensors", f"onnx/{key}.onnx", f"onnx_sim/{key}.onnx"):
            assert (folder / rel).is_file() and rel in manifest["sha256"]
    for model in manifest["models"]:
        assert max(model["parity_max_abs_error"].values()) < 1e-4


def test_reloaded_torch_and_onnx_models_agree(folder):
    manifest, models = load_torch_models(folder)
    windows = gait_like_windows(16, 96, seed=5)
    for key, model in models.items():
        onnx_runner = OnnxRuntimeRunner(artifacts.model_file(folder, manifest, key, "onnx_sim"))
        with torch.inference_mode():
            expected = model(torch.from_numpy(windows)).numpy().ravel()
        assert abs(predict(onnx_runner, windows) - expected).max() < 1e-4


def test_existing_folder_is_not_overwritten(folder):
    before = (folder / "manifest.json").read_bytes()
    with pytest.raises(ArtifactError, match="already exists"):
        write_demo_model_folder(folder, window_length=96)
    assert (folder / "manifest.json").read_bytes() == before
    assert not [p for p in folder.parent.iterdir() if ".staging-" in p.name]


def test_corrupt_file_is_refused(folder, tmp_path):
    broken = copy_of(folder, tmp_path)
    with open(broken / "onnx_sim" / "AS_5.onnx", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(ArtifactError, match=r"AS_5\.onnx: sha256 mismatch"):
        load_manifest(broken)


def test_missing_file_is_refused(folder, tmp_path):
    broken = copy_of(folder, tmp_path)
    (broken / "torch" / "LG_0.safetensors").unlink()
    with pytest.raises(ArtifactError, match="LG_0.safetensors: listed in the manifest but missing"):
        load_manifest(broken)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.update(format="something-else"), "format is 'something-else'"),
    (lambda m: m.update(format_version=2), "format_version 2 is not supported"),
    (lambda m: m.pop("window_length"), r"missing key\(s\) \['window_length'\]"),
    (lambda m: m["inputs"].pop(), "architecture takes 2 input channels"),
    (lambda m: m["architecture"].update(levels=0), "levels must be an integer in 1..24"),
    (lambda m: m["architecture"].update(weight_norm="yes"), "weight_norm must be true"),
    (lambda m: m["sha256"].update({"../escape": "0" * 64}), "leaves the model folder"),
    (lambda m: m["models"][1].update(mode_key="LG_0"), "unique mode_key"),
])
def test_mismatched_manifest_is_refused(folder, tmp_path, change, message):
    broken = copy_of(folder, tmp_path)
    rewrite_manifest(broken, change)
    with pytest.raises(ArtifactError, match=message):
        load_manifest(broken)


def test_not_json_and_missing_manifest(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_manifest(tmp_path / "nowhere")
    with pytest.raises(ArtifactError, match="manifest missing"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_manifest(tmp_path)


def test_weights_of_another_architecture_are_refused(folder, tmp_path):
    broken = copy_of(folder, tmp_path)
    weights = broken / "torch" / "LG_0.safetensors"
    state = load_file(str(weights))
    state["head.weight"] = torch.zeros(1, 32)
    save_file(state, str(weights))
    rewrite_manifest(broken, lambda m: m["sha256"].update(
        {"torch/LG_0.safetensors": artifacts.sha256_of(weights)}))
    with pytest.raises(ArtifactError, match="do not match the architecture"):
        load_torch_models(broken)


def test_non_safetensors_weights_are_refused(folder, tmp_path):
    broken = copy_of(folder, tmp_path)
    weights = broken / "torch" / "LG_0.safetensors"
    torch.save({"x": torch.zeros(1)}, weights)  # a pickle where safetensors belongs
    with pytest.raises(ArtifactError, match="not readable safetensors"):
        artifacts.load_weights(weights, load_manifest(folder)["architecture"])


def test_onnx_and_weights_carry_the_manifest_facts(folder, tmp_path):
    """A manifest edit that keeps every checksum is caught by the facts inside the files."""
    import onnx

    proto = onnx.load(str(folder / "onnx_sim" / "LG_0.onnx"))
    recorded = {p.key: p.value for p in proto.metadata_props}
    assert recorded["k2muse.inputs"] == '["hip_angle", "hip_velocity"]'
    assert recorded["k2muse.sample_rate_hz"] == "100.0" and recorded["k2muse.window_length"] == "96"
    broken = copy_of(folder, tmp_path)
    rewrite_manifest(broken, lambda m: m["inputs"].reverse())
    with pytest.raises(ArtifactError, match=r"exported with inputs \["):
        load_manifest(broken)
    rewrite_manifest(broken, lambda m: (m["inputs"].reverse(), m.update(sample_rate_hz=50.0)))
    with pytest.raises(ArtifactError, match="exported with sample_rate_hz 100.0"):
        load_manifest(broken)


def test_non_onnx_file_listed_as_onnx_is_one_error(folder, tmp_path):
    broken = copy_of(folder, tmp_path)
    fake = broken / "onnx" / "AS_5.onnx"
    fake.write_bytes(b"this is not a protobuf" * 10)
    rewrite_manifest(broken, lambda m: m["sha256"].update(
        {"onnx/AS_5.onnx": artifacts.sha256_of(fake)}))
    with pytest.raises(ArtifactError, match=r"AS_5\.onnx: not an ONNX model"):
        load_manifest(broken)


def test_interrupted_staging_folders_are_swept_by_the_next_write(folder, tmp_path):
    dead_pid = 2 ** 22 + 12345  # above the default pid_max: no such process
    leftover = tmp_path / f".demo.staging-{dead_pid}-abcd"
    (leftover / "onnx").mkdir(parents=True)
    live = tmp_path / f".demo.staging-{__import__('os').getpid()}-efgh"
    live.mkdir()
    write_demo_model_folder(tmp_path / "demo", window_length=96)
    assert not leftover.exists() and live.exists()
    assert load_manifest(tmp_path / "demo")["window_length"] == 96


def test_full_disk_while_writing_a_folder_leaves_nothing(tmp_path):
    import errno
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        with pytest.raises(OSError) as error:
            write_demo_model_folder(disk / "demo", mode_keys=("LG_0", "AS_5"), window_length=96)
        assert error.value.errno == errno.ENOSPC and error.value.filename == str(disk / "demo")
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
