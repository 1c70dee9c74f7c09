"""XGBoost's own predictor through its C API, without importing the ``xgboost`` package.

``import xgboost`` costs 1–3 s on this machine: its package init imports scikit-learn, SciPy and
pandas for its sklearn and DataFrame interfaces. Scoring a file needs only a Booster loaded from
its saved bytes and inplace prediction on a dense float matrix: four C functions of the very
``libxgboost.so`` the package wraps (``XGBoosterCreate``, ``XGBoosterLoadModelFromBuffer``,
``XGBoosterPredictFromDense``, ``XGBoosterFree``), called with the arguments
``Booster.inplace_predict`` passes. Same library, same predictor, same numbers (a test holds them
equal); anything missing (no library, an unknown symbol) gives None and the caller uses the
package.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import sys
import threading
from pathlib import Path

import numpy as np

from fraudops.errors import FraudopsError

_LIBRARY_NAMES = {"linux": "libxgboost.so", "darwin": "libxgboost.dylib", "win32": "xgboost.dll"}
# Booster.inplace_predict's own arguments for predict_type="value" with no base margin.
_PREDICT_ARGS = json.dumps(
    {
        "type": 0,
        "training": False,
        "iteration_begin": 0,
        "iteration_end": 0,
        "missing": float("nan"),
        "strict_shape": False,
        "cache_id": 0,
    }
).encode()

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False


class NativeBooster:
    """A Booster held by libxgboost itself: load from bytes, predict probabilities."""

    def __init__(self, lib: ctypes.CDLL, raw: bytes) -> None:
        self._lib = lib
        self._handle = ctypes.c_void_p()
        _check(lib, lib.XGBoosterCreate(None, ctypes.c_uint64(0), ctypes.byref(self._handle)))
        _check(
            lib,
            lib.XGBoosterLoadModelFromBuffer(
                self._handle, ctypes.c_char_p(raw), ctypes.c_uint64(len(raw))
            ),
        )
        count = ctypes.c_uint64()
        _check(lib, lib.XGBoosterGetNumFeature(self._handle, ctypes.byref(count)))
        self.num_features = int(count.value)
        # The result buffer belongs to the booster until the next call: one call at a time.
        self._predicting = threading.Lock()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """What ``Booster.inplace_predict(X)`` returns, as float64; ``X`` is (rows, features)."""
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float32)
        X = np.ascontiguousarray(X)
        if X.ndim != 2 or X.shape[1] != self.num_features:
            raise ValueError(f"expected (rows, {self.num_features}) features, got {X.shape}")
        if len(X) == 0:
            return np.empty(0, dtype=np.float64)
        interface = dict(X.__array_interface__)
        interface.pop("mask", None)
        values = json.dumps(interface).encode()
        shape = ctypes.POINTER(ctypes.c_uint64)()
        dims = ctypes.c_uint64()
        out = ctypes.POINTER(ctypes.c_float)()
        with self._predicting:
            _check(
                self._lib,
                self._lib.XGBoosterPredictFromDense(
                    self._handle,
                    ctypes.c_char_p(values),
                    ctypes.c_char_p(_PREDICT_ARGS),
                    None,
                    ctypes.byref(shape),
                    ctypes.byref(dims),
                    ctypes.byref(out),
                ),
            )
            size = int(np.prod([shape[i] for i in range(dims.value)]))
            if size != len(X):
                raise ValueError(f"XGBoost returned {size} values for {len(X)} rows")
            return np.ctypeslib.as_array(out, shape=(size,)).astype(np.float64)

    def save_json(self) -> bytes:
        """The model in XGBoost's JSON format (what ``Booster.save_raw("json")`` gives)."""
        length = ctypes.c_uint64()
        data = ctypes.POINTER(ctypes.c_char)()
        with self._predicting:  # the buffer, like the predictions', is the booster's
            _check(
                self._lib,
                self._lib.XGBoosterSaveModelToBuffer(
                    self._handle,
                    ctypes.c_char_p(b'{"format": "json"}'),
                    ctypes.byref(length),
                    ctypes.byref(data),
                ),
            )
            return ctypes.string_at(data, length.value)

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._lib.XGBoosterFree(handle)
            self._handle = ctypes.c_void_p()


def load_native(raw: bytes) -> NativeBooster | None:
    """A native Booster of ``raw`` (a model saved in XGBoost's UBJ format: the C API reads its
    JSON format from files only), or None where the C API is not at
    hand (the caller then uses the ``xgboost`` package); a FraudopsError when XGBoost refuses
    the bytes."""
    lib = _library()
    if lib is None:
        return None
    try:
        return NativeBooster(lib, raw)
    except AttributeError:  # a library without these functions: the package knows better
        return None
    except OSError as exc:
        raise FraudopsError(f"cannot load the XGBoost model: {exc}") from None


def _library() -> ctypes.CDLL | None:
    global _lib, _tried
    with _lock:
        if not _tried:
            _tried = True
            _lib = _open_library()
        return _lib


def _open_library() -> ctypes.CDLL | None:
    name = next((v for k, v in _LIBRARY_NAMES.items() if sys.platform.startswith(k)), None)
    found = importlib.util.find_spec("xgboost")  # locates the package without importing it
    if name is None or found is None or not found.submodule_search_locations:
        return None
    for folder in found.submodule_search_locations:
        path = Path(folder) / "lib" / name
        if path.is_file():
            try:
                lib = ctypes.CDLL(str(path))
            except OSError:
                return None
            lib.XGBGetLastError.restype = ctypes.c_char_p
            return lib
    return None


def _check(lib: ctypes.CDLL, code: int) -> None:
    if code != 0:
        message = lib.XGBGetLastError()
        raise OSError(f"XGBoost: {message.decode() if message else 'unknown error'}")
