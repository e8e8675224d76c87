"""MATLAB file input/output: v5 through scipy.io, v7.3 (HDF5) through h5py.

Both readers return the same plain structure: structs as dicts, cell arrays as lists,
numeric arrays as numpy arrays with MATLAB's row/column orientation, char arrays as str.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from .atomic import atomic_path, write_bytes_atomic

MAT73_SIGNATURE = b"MATLAB 7.3 MAT-file"


class MatFileError(ValueError):
    """A .mat file that cannot be read."""


def _from_scipy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _from_scipy(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_from_scipy(v) for v in value.ravel(order="F")]
    if isinstance(value, list):
        return [_from_scipy(v) for v in value]
    return value


def _from_h5(item: Any, f: h5py.File) -> Any:
    if isinstance(item, h5py.Group):
        return {k: _from_h5(v, f) for k, v in item.items() if not k.startswith("#")}
    mclass = item.attrs.get("MATLAB_class", b"double")
    mclass = mclass.decode() if isinstance(mclass, bytes) else str(mclass)
    data = item[()]
    if mclass == "cell":
        return [_from_h5(f[ref], f) for ref in np.asarray(data).ravel(order="F")]
    if item.attrs.get("MATLAB_empty", 0):
        return np.zeros((0, 0))
    if mclass == "char":
        return "".join(chr(c) for c in np.asarray(data).ravel(order="F"))
    array = np.asarray(data)
    if array.ndim >= 2:
        array = array.T  # HDF5 stores MATLAB arrays column-major
    if array.size == 1:
        return array.reshape(()).item() if mclass != "logical" else bool(array.reshape(()))
    return np.squeeze(array) if 1 in array.shape and array.ndim == 2 else array


def is_mat73(path: str | Path) -> bool:
    """True for a MATLAB v7.3 (HDF5) file."""
    with open(path, "rb") as fh:
        return fh.read(len(MAT73_SIGNATURE)) == MAT73_SIGNATURE or h5py.is_hdf5(path)


def load_mat(path: str | Path) -> dict[str, Any]:
    """Load any .mat file into dicts/lists/arrays; raise :class:`MatFileError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise MatFileError(f"{path}: no such file")
    try:
        if is_mat73(path):
            with h5py.File(path, "r") as f:
                return {k: _from_h5(v, f) for k, v in f.items() if not k.startswith("#")}
        raw = scipy.io.loadmat(path, simplify_cells=True)
    except MatFileError:
        raise
    except Exception as exc:  # scipy/h5py raise many exception types on corrupt files
        raise MatFileError(f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc})"
                           ) from None
    return {k: _from_scipy(v) for k, v in raw.items() if not k.startswith("__")}


def _to_scipy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_scipy(v) for k, v in value.items()}
    if isinstance(value, list):
        cell = np.empty((len(value), 1), dtype=object)
        for i, v in enumerate(value):
            cell[i, 0] = _to_scipy(v)
        return cell
    return value


def save_mat_v5(path: str | Path, variables: dict[str, Any], compress: bool = True) -> None:
    """Write a MAT v5 file atomically and durably; lists become N×1 cell arrays.

    Built in memory: scipy seeks back to patch each array's size, and on a file every seek
    is a system call (half the time of writing a participant's processed .mat).
    """
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, _to_scipy(variables), do_compression=compress,
                     long_field_names=True, oned_as="column")
    write_bytes_atomic(path, buffer.getbuffer())


def _write_h5(group: h5py.Group, name: str, value: Any, refs: h5py.Group) -> None:
    if isinstance(value, dict):
        sub = group.create_group(name)
        sub.attrs["MATLAB_class"] = np.bytes_("struct")
        for k, v in value.items():
            _write_h5(sub, k, v, refs)
    elif isinstance(value, list):
        handles = []
        for i, v in enumerate(value):
            key = f"{name}_{id(value)}_{i}"
            _write_h5(refs, key, v, refs)
            handles.append(refs[key].ref)
        ds = group.create_dataset(name, data=np.array(handles, dtype=h5py.ref_dtype)[None, :])
        ds.attrs["MATLAB_class"] = np.bytes_("cell")
    elif isinstance(value, str):
        ds = group.create_dataset(name, data=np.array([[ord(c)] for c in value], np.uint16))
        ds.attrs["MATLAB_class"] = np.bytes_("char")
    else:
        array = np.asarray(value)
        if array.ndim < 2:
            array = array.reshape(-1, 1) if array.ndim == 1 else array.reshape(1, 1)
        ds = group.create_dataset(name, data=array.T)
        mclass = {"float32": "single", "bool": "logical"}.get(array.dtype.name, "double")
        if array.dtype.kind in "iu":
            mclass = array.dtype.name
        ds.attrs["MATLAB_class"] = np.bytes_(mclass)


def save_mat_v73(path: str | Path, variables: dict[str, Any]) -> None:
    """Write a MATLAB v7.3 (HDF5) file atomically, readable by :func:`load_mat` and MATLAB."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", userblock_size=512) as f:
            refs = f.create_group("#refs#")
            for name, value in variables.items():
                _write_h5(f, name, value, refs)
        header = (MAT73_SIGNATURE + b", Platform: GLNXA64, Created by: k2muse_dataset").ljust(
            116, b" ") + b"\x00" * 8 + b"\x00\x02IM"
        with open(tmp, "r+b") as fh:
            fh.write(header.ljust(512, b"\x00"))
