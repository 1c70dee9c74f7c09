"""A flat, vectorised evaluator of an XGBoost forest for the online path.

Why: every ``Booster.inplace_predict`` call pays ~250 µs of fixed cost on this kind of machine
before it scores a single row (XGBoost re-reads the cgroup CPU quota files on each call), which
for a 1–16-row micro-batch is most of the model time. The forest itself is small: all trees
become four flat arrays (feature, threshold, children, leaf value), and a batch walks every tree
at once, one level per step, in NumPy. Inputs are validated finite numbers, so XGBoost's
missing-value branches never apply.

Only what it can reproduce exactly is taken (binary:logistic / binary:logitraw, numeric splits,
one target); anything else returns None from ``FlatForest.from_booster`` and the caller keeps
XGBoost. The result equals ``inplace_predict`` to float32 rounding (tested).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

_SUPPORTED_OBJECTIVES = ("binary:logistic", "binary:logitraw")


class FlatForest:
    def __init__(
        self,
        feature: np.ndarray,
        threshold: np.ndarray,
        children: np.ndarray,
        value: np.ndarray,
        roots: np.ndarray,
        depth: int,
        base_margin: float,
        n_features: int,
        logistic: bool,
    ) -> None:
        self.feature = feature
        self.threshold = threshold
        self.children = children
        self.value = value
        self.roots = roots
        self.depth = depth
        self.base_margin = base_margin
        self.n_features = n_features
        self.logistic = logistic

    @classmethod
    def from_booster(cls, booster: Any) -> FlatForest | None:
        """The forest of an XGBoost booster, or None when it uses what this does not cover."""
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        objective = learner["objective"]["name"]
        params = learner["learner_model_param"]
        gbm = learner["gradient_booster"]
        if (
            objective not in _SUPPORTED_OBJECTIVES
            or gbm.get("name") != "gbtree"
            or int(params.get("num_target", "1")) != 1
            or int(params.get("num_class", "0")) > 1
        ):
            return None
        trees = gbm["model"]["trees"]
        base_score = float(str(params["base_score"]).strip("[]").split(",")[0])
        if objective == "binary:logistic":
            if not 0.0 < base_score < 1.0:
                return None
            base_margin = math.log(base_score / (1.0 - base_score))
        else:
            base_margin = base_score
        features, thresholds, children, values, roots = [], [], [], [], []
        depth = 0
        offset = 0
        for tree in trees:
            if any(tree.get("split_type", [])) or tree.get("categories_nodes"):
                return None  # categorical splits
            left = np.asarray(tree["left_children"], dtype=np.int64)
            right = np.asarray(tree["right_children"], dtype=np.int64)
            n = len(left)
            leaf = left == -1
            own = np.arange(n)
            # A leaf points at itself both ways, so walking further keeps it where it is.
            kids = np.stack([np.where(leaf, own, left), np.where(leaf, own, right)], axis=1)
            conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
            features.append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
            thresholds.append(np.where(leaf, np.float32(np.inf), conditions))
            children.append(kids + offset)
            values.append(np.where(leaf, conditions, np.float32(0)))
            roots.append(offset)
            depth = max(depth, _depth(left, right))
            offset += n
        return cls(
            feature=np.concatenate(features).astype(np.intp),
            threshold=np.concatenate(thresholds).astype(np.float32),
            children=np.concatenate(children).reshape(-1).astype(np.intp),
            value=np.concatenate(values).astype(np.float32),
            roots=np.asarray(roots, dtype=np.intp),
            depth=depth,
            base_margin=base_margin,
            n_features=int(params["num_feature"]),
            logistic=objective == "binary:logistic",
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (or raw margins for logitraw) for each row of ``X``."""
        rows = np.ascontiguousarray(X, dtype=np.float32)
        n_rows = rows.shape[0]
        flat = rows.reshape(-1)
        row_base = (np.arange(n_rows, dtype=np.intp) * self.n_features)[:, None]
        node = np.broadcast_to(self.roots, (n_rows, len(self.roots))).copy()
        for _ in range(self.depth):
            # XGBoost goes left when x < split_condition; children[2*node + 1] is the right.
            right = flat[row_base + self.feature[node]] >= self.threshold[node]
            node = self.children[2 * node + right]
        margin = self.value[node].sum(axis=1, dtype=np.float32).astype(np.float64)
        margin += self.base_margin
        if not self.logistic:
            return margin
        return 1.0 / (1.0 + np.exp(-margin))


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Edges on the longest root-to-leaf path of one tree."""
    deepest = 0
    stack = [(0, 0)]
    while stack:
        node, d = stack.pop()
        if left[node] == -1:
            deepest = max(deepest, d)
            continue
        stack.append((int(left[node]), d + 1))
        stack.append((int(right[node]), d + 1))
    return deepest
