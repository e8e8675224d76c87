"""process_release outputs match digests recorded before the speed-up work (issue #15).

A small generated release is processed with one worker; every HDF5 dataset and attribute, every
variable of the processed .mat files and every report row is reduced to a digest and compared
with golden/process_release_digests.json. Arrays match when their bytes are identical or, failing
that, when dtype, shape, NaN mask and three weighted sums agree to 1e-12 (relative).

Rewrite the golden file only for an intended output change:
    .venv/bin/python src/k2muse_dataset/test/test_outputs_golden.py --write
"""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release

GOLDEN = Path(__file__).resolve().parent / "golden" / "process_release_digests.json"
TOLERANCE = 1e-12


def _array_digest(value) -> dict:
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        return {"text": repr(array.tolist())}
    if array.size == 1:
        return {"dtype": array.dtype.str, "shape": list(array.shape), "value": repr(array.item())}
    contiguous = np.ascontiguousarray(array)
    digest = {"dtype": array.dtype.str, "shape": list(array.shape),
              "sha256": hashlib.sha256(contiguous.tobytes()).hexdigest()[:16]}
    if array.dtype.kind in "fiub" and array.size:
        flat = contiguous.astype(np.float64).ravel()
        nan = np.isnan(flat)
        index = np.arange(flat.size, dtype=np.float64)
        finite = np.where(nan, 0.0, flat)
        digest.update({
            "nan_sha256": hashlib.sha256(np.packbits(nan).tobytes()).hexdigest()[:16],
            "sums": [float(finite.sum()), float(finite @ np.cos(index)),
                     float(finite @ (index % 97))]})
    return digest


def _text(value, roots: dict[str, str]) -> str:
    text = value.decode() if isinstance(value, bytes) else str(value)
    for root, name in roots.items():
        text = text.replace(root, name)
    return text


def _attr_digest(attrs, name: str, roots: dict[str, str]):
    """The value, and the stored HDF5 type (variable or fixed-length string, encoding)."""
    value = attrs[name]
    stored = attrs.get_id(name).dtype
    kind = f"{stored.str} {h5py.check_string_dtype(stored)}"
    if isinstance(value, (str, bytes)):
        return {"text": _text(value, roots), "stored": kind}
    return {**_array_digest(value), "stored": kind}


def _mat_leaves(value, path: str, out: dict) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            _mat_leaves(value[key], f"{path}/{key}", out)
    elif isinstance(value, np.ndarray) and value.dtype == object:
        for i, item in enumerate(value.ravel(order="F")):
            _mat_leaves(item, f"{path}[{i}]", out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _mat_leaves(item, f"{path}[{i}]", out)
    else:
        out[path] = _array_digest(value)


def output_digests(release: Path, out: Path) -> dict:
    """Digest of every trial HDF5 dataset/attribute, processed .mat variable and report row."""
    roots = {str(release): "<release>", str(out): "<out>"}
    digests: dict = {}
    for path in sorted(out.rglob("*.h5")):
        entries: dict = {}
        with h5py.File(path, "r") as f:
            def visit(name, item, entries=entries):
                attrs = {k: _attr_digest(item.attrs, k, roots) for k in sorted(item.attrs)}
                data = _array_digest(item[()]) if isinstance(item, h5py.Dataset) else None
                entries[name] = {"attrs": attrs, "data": data}
            visit("/", f)
            f.visititems(visit)
        digests[path.relative_to(out).as_posix()] = entries
    for path in sorted(out.rglob("*.mat")):
        leaves: dict = {}
        raw = scipy.io.loadmat(path, simplify_cells=True)
        _mat_leaves({k: v for k, v in raw.items() if not k.startswith("__")}, "", leaves)
        digests[path.relative_to(out).as_posix()] = leaves
    report = json.loads((out / "report.json").read_text())
    digests["report.json"] = json.loads(_text(json.dumps(report), roots))
    return digests


def _make_outputs(tmp: Path) -> tuple[Path, Path]:
    release = generate_release(tmp / "release", participants=("P01", "P02"),
                               mode_keys=("LG_0", "AS_10"), trials=2, duration_s=6.0, seed=11,
                               processed=False)
    out = tmp / "out"
    process_release(release, out, jobs=1)
    return release, out


def _compare(expected, actual, where: str, problems: list[str]) -> None:
    if isinstance(expected, dict) and "sha256" in expected and isinstance(actual, dict):
        same_kind = all(expected.get(k) == actual.get(k) for k in ("dtype", "shape"))
        if same_kind and expected["sha256"] == actual.get("sha256"):
            return
        close = same_kind and expected.get("nan_sha256") == actual.get("nan_sha256") and \
            "sums" in expected and np.allclose(actual.get("sums", []), expected["sums"],
                                               rtol=TOLERANCE, atol=TOLERANCE)
        if not close:
            problems.append(f"{where}: {actual} != {expected}")
    elif isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual or key not in expected:
                problems.append(f"{where}/{key}: only in "
                                f"{'golden' if key in expected else 'new output'}")
            else:
                _compare(expected[key], actual[key], f"{where}/{key}", problems)
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _compare(e, a, f"{where}[{i}]", problems)
    elif expected != actual:
        problems.append(f"{where}: {actual!r} != {expected!r}")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> tuple[Path, Path]:
    return _make_outputs(tmp_path_factory.mktemp("golden"))


def test_outputs_match_golden_digests(outputs):
    release, out = outputs
    actual = output_digests(release, out)
    expected = json.loads(GOLDEN.read_text())
    assert len([k for k in expected if k.endswith(".h5")]) == 8
    problems: list[str] = []
    _compare(expected, actual, "", problems)
    assert not problems, f"{len(problems)} differences, first ones:\n" + "\n".join(problems[:20])


def test_digest_sees_a_changed_sample(outputs, tmp_path):
    """A one-sample change in one trial file is reported (the comparison can fail)."""
    release, original = outputs
    out = tmp_path / "out"
    shutil.copytree(original, out)
    path = sorted(out.rglob("*.h5"))[0]
    with h5py.File(path, "r+") as f:
        f["aus/frames"][0, 0, 0] += 1.0
    problems: list[str] = []
    # the copied report still names the original folder
    digests = json.loads(_text(json.dumps(output_digests(release, out)), {str(original): "<out>"}))
    _compare(json.loads(GOLDEN.read_text()), digests, "", problems)
    assert len(problems) == 1 and "aus/frames" in problems[0]


def test_resumed_rerun_writes_the_same_participant_mat(outputs, tmp_path):
    """Trials written in this run come from memory, up-to-date ones are read back: same .mat."""
    release, original = outputs
    copy, out = tmp_path / "release", tmp_path / "out"
    shutil.copytree(release, copy)
    shutil.copytree(original, out)  # copy2: the outputs stay newer than their sources
    source = sorted((copy / "SourceData" / "Vicon" / "P01").rglob("*.c3d"))[1]
    later = source.stat().st_mtime + 60
    os.utime(source, (later, later))
    mat = out / "processed" / "P01.mat"
    os.utime(mat, (0, 0))
    rows = process_release(copy, out, jobs=1)["rows"]
    statuses = sorted((r["status"], r["trial"]) for r in rows if "_Trial_" in r["trial"])
    assert [s for s, _ in statuses].count("processed") == 1 and \
        [s for s, _ in statuses].count("up-to-date") == 7
    assert [(r["trial"], r["status"]) for r in rows if "_Trial_" not in r["trial"]] == \
        [("P01", "processed")]
    assert mat.stat().st_mtime > 0
    actual = output_digests(copy, out)
    expected = json.loads(GOLDEN.read_text())
    problems: list[str] = []
    for name in ("processed/P01.mat", "processed/P02.mat"):
        _compare(expected[name], actual[name], name, problems)
    assert not problems, "\n".join(problems[:20])


def test_two_workers_write_identical_outputs(outputs, tmp_path):
    """Entries made in workers (pickled back) give the same bytes as those made in-process."""
    release, one_worker = outputs
    out = tmp_path / "out"
    process_release(release, out, jobs=2)
    assert output_digests(release, out) == output_digests(release, one_worker)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.parent.mkdir(exist_ok=True)
        digests = output_digests(*_make_outputs(Path(tmp)))
        GOLDEN.write_text("{\n" + ",\n".join(  # one line per output file: readable diffs
            f"{json.dumps(k)}: {json.dumps(v, sort_keys=True, separators=(',', ':'))}"
            for k, v in sorted(digests.items())) + "\n}\n")
    print(f"wrote {GOLDEN}")
