"""A compiled tree evaluator for XGBoost models: the same probabilities, several times faster.

XGBoost's predictor walks each tree node by node, one row at a time, with a branch per node.
This module writes the champion's trees as constants into a small C kernel
(``fraudops.models.forest_kernel``), compiles it with the machine's C compiler for this very CPU,
and calls it through ctypes on all cores. Its float operations are XGBoost's own, in the same
order, so the probabilities are equal (checked on probe rows before a build is kept).

A built library is an artifact cache under the home: ``cache/compiled/<model>/<version>/``,
one file per key (the model file's content hash, the kernel's version and source, the compiler
and flags, the CPU), written to a temporary name and renamed, so concurrent runs never see half
a library; later runs load it in milliseconds. Without a C compiler, or for a model the kernel
does not cover (another objective, categorical splits, deeper than 7 levels, more than 255
thresholds on one feature), ``compiled_predictor`` logs one line and returns None: the caller
scores with XGBoost's predictor. Rows with missing values go to XGBoost too.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import json
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fraudops.models.forest_kernel import KERNEL_SOURCE, KERNEL_VERSION
from fraudops.models.portable import XGBoostModel

log = logging.getLogger(__name__)

CFLAGS = ("-O3", "-march=native", "-mprefer-vector-width=512", "-shared", "-fPIC")
MAX_DEPTH = 7  # node numbers are bytes: 2^(7+1) - 2 = 254
MAX_CUTS = 255  # distinct thresholds a feature may have: its bins are bytes
MAX_FEATURES = 4096  # the kernel keeps a block's bins on the stack: 512 bytes a feature
MIN_ROWS_PER_THREAD = 32_768
PROBE_ROWS = 4096
TOLERANCE = 1e-6  # on probabilities; the build check has seen 0.0


class Unsupported(Exception):
    """The model, or this machine, is not one the compiled kernel covers."""


@dataclass(frozen=True)
class ForestTables:
    """An XGBoost forest as the kernel's constants (see ``forest_kernel``)."""

    features: int
    depth: int
    cuts: np.ndarray  # (features, 256) float32, sorted, +inf padded
    steps: np.ndarray  # (features,) binary-search steps
    feat: np.ndarray  # (trees, 2^depth - 1) uint16
    tbin: np.ndarray  # (trees, 2^depth - 1) uint8
    real: np.ndarray  # (trees, 2^depth - 1) uint8
    leaf: np.ndarray  # (trees, 2^depth) float32
    base: np.float32

    @property
    def trees(self) -> int:
        return len(self.feat)


def forest_tables(model_json: bytes) -> ForestTables:
    """The kernel's tables of a model in XGBoost's JSON format; Unsupported says why not."""
    learner = json.loads(model_json)["learner"]
    objective = learner["objective"]["name"]
    booster = learner["gradient_booster"]
    params = learner["learner_model_param"]
    if objective != "binary:logistic" or booster["name"] != "gbtree":
        raise Unsupported(f"{booster['name']} with {objective} (covered: gbtree binary:logistic)")
    if int(params.get("num_target", 1)) > 1 or int(params.get("num_class", 0)) > 1:
        raise Unsupported("a multi-output model")
    features = int(params["num_feature"])
    if features > MAX_FEATURES:
        raise Unsupported(f"{features} features (at most {MAX_FEATURES})")
    trees = booster["model"]["trees"]
    if not trees:
        raise Unsupported("a model without trees")
    cut_sets: list[set[float]] = [set() for _ in range(features)]
    depth = 1
    for tree in trees:
        if any(tree["split_type"]) or int(tree["tree_param"].get("size_leaf_vector", 1)) > 1:
            raise Unsupported("categorical splits or vector leaves")
        depth = max(depth, _depth(tree["left_children"], tree["right_children"]))
        for left, index, cond in zip(
            tree["left_children"], tree["split_indices"], tree["split_conditions"], strict=True
        ):
            if left != -1:
                cut_sets[index].add(float(np.float32(cond)))
    if depth > MAX_DEPTH:
        raise Unsupported(f"trees {depth} levels deep (at most {MAX_DEPTH})")
    crowded = [f for f, cuts in enumerate(cut_sets) if len(cuts) > MAX_CUTS]
    if crowded:
        raise Unsupported(f"more than {MAX_CUTS} thresholds on features {crowded[:5]}")
    cuts = np.full((features, 256), np.inf, dtype=np.float32)
    steps = np.zeros(features, dtype=np.int32)
    for f, values in enumerate(cut_sets):
        cuts[f, : len(values)] = sorted(values)
        steps[f] = len(values).bit_length()  # 2^steps - 1 >= count
    nodes = (1 << depth) - 1
    feat = np.zeros((len(trees), nodes), dtype=np.uint16)
    tbin = np.zeros((len(trees), nodes), dtype=np.uint8)
    real = np.zeros((len(trees), nodes), dtype=np.uint8)
    leaf = np.zeros((len(trees), nodes + 1), dtype=np.float32)
    for t, tree in enumerate(trees):
        _fill(tree, t, depth, cuts, feat, tbin, real, leaf)
    return ForestTables(
        features, depth, cuts, steps, feat, tbin, real, leaf, _base_margin(params["base_score"])
    )


def _depth(left: list[int], right: list[int]) -> int:
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, level = stack.pop()
        if left[node] == -1:
            deepest = max(deepest, level)
        else:
            stack += [(left[node], level + 1), (right[node], level + 1)]
    return deepest


def _fill(
    tree: dict[str, Any],
    t: int,
    depth: int,
    cuts: np.ndarray,
    feat: np.ndarray,
    tbin: np.ndarray,
    real: np.ndarray,
    leaf: np.ndarray,
) -> None:
    """Tree ``t`` as a complete tree: a leaf above the last level fills every leaf below it."""
    left, right = tree["left_children"], tree["right_children"]
    index, cond = tree["split_indices"], tree["split_conditions"]
    nodes = (1 << depth) - 1
    stack = [(0, 0, 0)]  # (node in the tree, position in the complete tree, level)
    while stack:
        node, pos, level = stack.pop()
        if left[node] == -1:  # a leaf: XGBoost keeps its value in split_conditions
            first = last = pos
            for _ in range(depth - level):
                first, last = 2 * first + 1, 2 * last + 2
            leaf[t, first - nodes : last - nodes + 1] = cond[node]
            continue
        f = index[node]
        feat[t, pos], real[t, pos] = f, 1
        # x >= threshold  <=>  (thresholds <= x) > rank  <=>  bin(x) >= rank + 1
        tbin[t, pos] = int(np.searchsorted(cuts[f], np.float32(cond[node]))) + 1
        stack += [(left[node], 2 * pos + 1, level + 1), (right[node], 2 * pos + 2, level + 1)]


def _base_margin(raw: str) -> np.float32:
    values = [float(v) for v in str(raw).strip("[]").split(",") if v.strip()]
    if len(values) != 1 or not 0.0 < values[0] < 1.0:
        raise Unsupported(f"base_score {raw!r}")
    p = np.float32(values[0])  # XGBoost's ProbToMargin, in float32
    return np.float32(-np.log(np.float32(1.0) / p - np.float32(1.0)))


def c_source(tables: ForestTables) -> str:
    """The kernel with the forest's constants before it."""

    def floats(a: np.ndarray) -> str:
        return ",".join("INFINITY" if np.isinf(v) else f"{float(v).hex()}f" for v in a.ravel())

    def ints(a: np.ndarray) -> str:
        return ",".join(map(str, a.ravel().tolist()))

    t, n = tables.trees, (1 << tables.depth) - 1
    return "\n".join(
        [
            "#include <math.h>",
            "#include <stdint.h>",
            f"#define F {tables.features}",
            f"#define T {t}",
            f"#define D {tables.depth}",
            f"static const float CUTS[F][256] = {{{floats(tables.cuts)}}};",
            f"static const int STEPS[F] = {{{ints(tables.steps)}}};",
            f"static const uint16_t FEAT[T][{n}] = {{{ints(tables.feat)}}};",
            f"static const uint8_t TBIN[T][{n}] = {{{ints(tables.tbin)}}};",
            f"static const uint8_t REAL[T][{n}] = {{{ints(tables.real)}}};",
            f"static const float LEAF[T][{n + 1}] = {{{floats(tables.leaf)}}};",
            f"static const float BASE = {float(tables.base).hex()}f;",
            KERNEL_SOURCE,
        ]
    )


class CompiledForest:
    """A compiled forest library: ``predict`` gives the model's probabilities as float64.

    Rows are split over the machine's cores (ctypes releases the GIL during the call); a matrix
    with missing values goes to ``fallback`` (XGBoost), which handles their default branches.
    """

    def __init__(self, path: Path, fallback: Callable[[np.ndarray], np.ndarray]) -> None:
        self.path = Path(path)
        self._lib = ctypes.CDLL(str(self.path))
        self._lib.fraudops_forest_predict.restype = None
        self._lib.fraudops_forest_predict.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_void_p,
        ]
        self.num_features = int(self._lib.fraudops_forest_features())
        self.num_trees = int(self._lib.fraudops_forest_trees())
        self._fallback = fallback
        self._threads = _threads()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)  # XGBoost compares in float32 too
        if X.ndim != 2 or X.shape[1] != self.num_features:
            raise ValueError(f"expected (rows, {self.num_features}) features, got {X.shape}")
        if np.isnan(X).any():
            return np.asarray(self._fallback(X), dtype=np.float64)
        if not (X.flags.c_contiguous or X.flags.f_contiguous):  # both are the kernel's layouts
            X = np.ascontiguousarray(X)
        out = np.empty(len(X), dtype=np.float32)
        parts = min(self._threads, max(1, len(X) // MIN_ROWS_PER_THREAD))
        if parts == 1:
            self._run(X, out)
        else:
            bounds = np.linspace(0, len(X), parts + 1).astype(int)
            pool = self._executor()
            done = [pool.submit(self._run, X[a:b], out[a:b]) for a, b in itertools.pairwise(bounds)]
            for future in done:
                future.result()
        return out.astype(np.float64)

    def _run(self, X: np.ndarray, out: np.ndarray) -> None:
        # Row-major, or column-major (a row slice of it keeps the whole matrix's column stride,
        # and it is > 1 for any matrix that is not row-major as well).
        column_stride = 1 if X.flags.c_contiguous else X.strides[1] // X.itemsize
        if not X.flags.c_contiguous and X.strides[0] != X.itemsize:
            raise ValueError("the compiled forest reads row- or column-major matrices only")
        self._lib.fraudops_forest_predict(X.ctypes.data, len(X), column_stride, out.ctypes.data)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="forest")
            return self._pool


def compiled_predictor(
    model: XGBoostModel, cache_root: Path, name: str, version: str
) -> CompiledForest | None:
    """The compiled forest of ``model`` (registered as ``name`` ``version``), from the cache
    under ``cache_root`` or built now; None, with one log line saying why, when it cannot be had
    (the caller then scores with XGBoost's predictor)."""
    try:
        return _cached_or_built(model, Path(cache_root), name, version)
    except Unsupported as exc:
        log.warning(
            "%s v%s is scored with XGBoost's predictor: no compiled forest (%s)", name, version, exc
        )
        return None


def cache_path(model: XGBoostModel, cache_root: Path, name: str, version: str) -> Path:
    """Where the compiled forest of this model, built here, lives in the cache."""
    key = hashlib.sha256()
    for part in (
        hashlib.sha256(model.saved_bytes()).hexdigest(),
        str(KERNEL_VERSION),
        hashlib.sha256(KERNEL_SOURCE.encode()).hexdigest(),
        " ".join([*_compiler(), *CFLAGS]),
        _cpu(),
    ):
        key.update(part.encode() + b"\0")
    folder = Path(cache_root) / "compiled" / _safe(name) / _safe(version)
    return folder / f"forest-{key.hexdigest()[:24]}.so"


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in part).lstrip(".") or "_"


def _cached_or_built(
    model: XGBoostModel, cache_root: Path, name: str, version: str
) -> CompiledForest:
    path = cache_path(model, cache_root, name, version)
    if path.is_file():
        try:
            return CompiledForest(path, model.predict_proba)
        except OSError as exc:  # a damaged file: build it again
            log.warning("compiled forest %s does not load (%s): building it again", path, exc)
    started = time.perf_counter()
    compiler = _compiler()
    if shutil.which(compiler[0]) is None:
        raise Unsupported(f"no C compiler {compiler[0]!r} (set CC to one)")
    try:
        tables = forest_tables(model.model_json())
    except (KeyError, ValueError, TypeError) as exc:  # a JSON layout this code does not know
        raise Unsupported(f"unreadable trees: {exc!r}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".build-", dir=path.parent))
    try:
        (build / "forest.c").write_text(c_source(tables))
        temp = build / path.name
        command = [*compiler, *CFLAGS, "-o", str(temp), str(build / "forest.c"), "-lm"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unsupported(f"the C compiler failed: {exc}") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise Unsupported(f"the C compiler failed ({done.returncode}): {last}")
        _check_equal(CompiledForest(temp, model.predict_proba), model, tables)
        os.replace(temp, path)  # atomic: a reader sees no library or a whole one
    finally:
        shutil.rmtree(build, ignore_errors=True)
    log.info("compiled %s v%s in %.1f s: %s", name, version, time.perf_counter() - started, path)
    return CompiledForest(path, model.predict_proba)


def _check_equal(forest: CompiledForest, model: XGBoostModel, tables: ForestTables) -> None:
    """Probe rows at, just below and around every threshold: compiled == XGBoost, or no build."""
    rng = np.random.default_rng(0)
    X = np.empty((PROBE_ROWS, forest.num_features), dtype=np.float32)
    edges = np.array([-1e30, 0.0, 1e30], dtype=np.float32)
    for f in range(forest.num_features):
        cuts = tables.cuts[f][np.isfinite(tables.cuts[f])]
        below = np.nextafter(cuts, np.float32(-np.inf))
        X[:, f] = rng.choice(np.concatenate([cuts, below, edges]), size=PROBE_ROWS)
    expected = np.asarray(model.with_predictor(None).predict_proba(X), dtype=np.float64)
    diff = float(np.max(np.abs(forest.predict(X) - expected)))
    if not diff <= TOLERANCE:
        raise Unsupported(f"compiled probabilities differ from XGBoost's by {diff:.2e}")


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC") or "cc") or ["cc"]


def _cpu() -> str:
    """What ``-march=native`` compiles for: the CPU's model and flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    lines = [line for line in info.splitlines() if line.startswith(("model name", "flags"))]
    return f"{platform.machine()} " + " | ".join(sorted(set(lines)))


def _threads() -> int:
    """The CPUs this process may use, capped by ``OMP_NUM_THREADS`` when set (a Dask worker's
    nanny sets it to 1: two workers of one thread each must not each start a thread per core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = os.environ.get("OMP_NUM_THREADS", "")
    capped = min(cores or 1, int(limit)) if limit.isdigit() and int(limit) > 0 else cores
    return max(1, capped or 1)
