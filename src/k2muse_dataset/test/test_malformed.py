"""Every malformed input ends in a clear error that names the file, or a reported skip."""

import shutil

import numpy as np
import pytest
import scipy.io
from k2muse_dataset.aus_reader import AUSFileError, read_aus_channel
from k2muse_dataset.c3d_reader import C3DError, read_c3d
from k2muse_dataset.emg_reader import EMGFileError, read_noraxon_mat
from k2muse_dataset.mat_io import MatFileError, load_mat, save_mat_v73
from k2muse_dataset.process import process_release


def test_truncated_c3d(real_c3d_dir, tmp_path):
    source = (real_c3d_dir / "tsalemink_C3D-parser_S4-AMGait03.c3d").read_bytes()
    bad = tmp_path / "truncated.c3d"
    bad.write_bytes(source[: len(source) // 3])
    with pytest.raises(C3DError, match="truncated.c3d"):
        read_c3d(bad)
    (tmp_path / "garbage.c3d").write_bytes(b"\x00" * 100)
    with pytest.raises(C3DError, match="garbage.c3d"):
        read_c3d(tmp_path / "garbage.c3d")


def test_c3d_without_plug_in_gait_labels(tmp_path):
    import ezc3d
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [100]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = ("LASI", "RASI")
    c3d["data"]["points"] = np.ones((4, 2, 20))
    c3d.write(str(tmp_path / "markers_only.c3d"))
    with pytest.raises(C3DError, match="markers_only.c3d: no Plug-in Gait hip angles"):
        read_c3d(tmp_path / "markers_only.c3d")


def test_aus_empty_partial_and_text(tmp_path):
    empty = tmp_path / "US_Ch1_S_1_Trial_1.txt"
    empty.write_text("")
    with pytest.raises(AUSFileError, match="US_Ch1_S_1_Trial_1.txt: no numeric samples"):
        read_aus_channel(empty)
    partial = tmp_path / "partial.txt"
    partial.write_text("header line\n" + "\n".join(str(v) for v in range(1500)))
    with pytest.raises(AUSFileError, match="partial.txt: 1500 samples is not a whole number"):
        read_aus_channel(partial)
    text = tmp_path / "text.txt"
    text.write_text("1,2,3\n4,x,6\n")
    with pytest.raises(AUSFileError, match="text.txt: non-numeric sample 'x'"):
        read_aus_channel(text)


@pytest.mark.parametrize("layout", ["frame_per_line_tab", "value_per_line", "comma_header"])
def test_aus_layouts_are_sniffed(tmp_path, layout):
    frames = np.arange(3000).reshape(3, 1000) % 97 - 40
    path = tmp_path / f"{layout}.txt"
    if layout == "frame_per_line_tab":
        path.write_text("\n".join("\t".join(map(str, f)) for f in frames))
    elif layout == "value_per_line":
        path.write_text("\n".join(map(str, frames.ravel())) + "\n")
    else:
        path.write_text("ELONXI export\nChannel 1\n" + "\n".join(",".join(map(str, f))
                                                                 for f in frames))
    np.testing.assert_array_equal(read_aus_channel(path), frames)


def test_corrupt_and_wrong_mat(tmp_path):
    corrupt = tmp_path / "corrupt.mat"
    corrupt.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x01" * 200)
    with pytest.raises(MatFileError, match="corrupt.mat"):
        load_mat(corrupt)
    wrong = tmp_path / "wrong.mat"
    scipy.io.savemat(wrong, {"x": np.ones((100, 5))})
    with pytest.raises(EMGFileError, match=r"wrong.mat: no 13-channel sEMG data among .*'x'"):
        read_noraxon_mat(wrong)


def test_noraxon_v73_with_time_column_and_vectors(tmp_path):
    t = np.arange(4000) / 2000.0
    data = np.column_stack([t, np.random.default_rng(0).normal(size=(4000, 13))])
    save_mat_v73(tmp_path / "v73.mat", {"EMG": data})
    rec = read_noraxon_mat(tmp_path / "v73.mat")
    assert rec.signals_uv.shape == (4000, 13)
    np.testing.assert_allclose(rec.signals_uv[:, 0], data[:, 1], rtol=1e-6)
    assert any("time" in n for n in rec.notes)
    vectors = {f"ch{i:02d}": data[:, i + 1] for i in range(13)} | {"time": t}
    scipy.io.savemat(tmp_path / "vec.mat", vectors)
    rec = read_noraxon_mat(tmp_path / "vec.mat")
    assert rec.sample_rate_hz == 2000 and rec.channel_names[0] == "ch00"


def test_bad_files_in_a_release_are_reported_not_fatal(release, tmp_path):
    copy = tmp_path / "release"
    shutil.copytree(release / "SourceData/Vicon/P01", copy / "SourceData/Vicon/P01")
    shutil.copytree(release / "SourceData/Noraxon/P01", copy / "SourceData/Noraxon/P01")
    vicon = copy / "SourceData/Vicon/P01/Ideal"
    c3ds = sorted(vicon.glob("*.c3d"))
    c3ds[0].write_bytes(c3ds[0].read_bytes()[:2000])  # truncated
    (vicon / "P01+Ideal+LG+0+9+1.c3d").write_bytes(b"")  # unknown speed
    (copy / "SourceData/Noraxon/P01/Ideal-LG-0-1-2.mat").write_bytes(b"junk")
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    report = process_release(copy, tmp_path / "out", jobs=1, write_mat=False)
    rows = {r["trial"] or r["files"][0]: r for r in report["rows"]}
    bad = rows[c3ds[0].stem.replace("+", "_").replace("_1_1", "_S_1_Trial_1").replace(
        "P01_Ideal_AS_10_S_1_Trial_1", "P01_Ideal_AS_10_S_1_Trial_1")]
    assert bad["status"] == "skipped" and "not a readable c3d file" in bad["reasons"][0]
    unknown = [r for r in report["rows"] if r["status"] == "skipped" and "9" in r["files"][0]]
    assert "unknown speed token" in unknown[0]["reasons"][0]
    junk = rows["P01_Ideal_LG_0_S_1_Trial_2"]
    assert junk["status"] == "processed"
    assert any("missing modality: sEMG" in r and "Ideal-LG-0-1-2.mat" in r
               for r in junk["reasons"])
    assert any("missing modality: AUS" in r for r in junk["reasons"])
    assert sum(r["status"] == "processed" for r in report["rows"]) == 5
    # sources untouched
    assert before == {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
