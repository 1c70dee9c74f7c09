"""Parsing and validating a /v1/predict body against the feature spec, without pydantic.

The hot path parses with orjson and checks types in Python, then ranges, integrality and
categories in one vectorised pass over the whole request. Errors come in FastAPI's 422 shape
(``{"loc": [...], "msg": ..., "type": ...}``), one per bad field, so clients see the same thing
as from any FastAPI app. The pydantic model for the OpenAPI document is built from the same spec
(``openapi_model``), so the docs and the checks cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, create_model

from fraudops.spec import FeatureKind, FeatureSpec

ID_FIELDS = ("transaction_id", "customer_id")
# Models score in float32: a larger magnitude would become infinity there.
FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMBER_TYPES = (int, float)
_MAX_ID_LENGTH = 256


class RequestInvalid(Exception):
    """The body cannot be served; ``errors`` is FastAPI's list of 422 details."""

    def __init__(self, errors: list[dict[str, Any]], status: int = 422) -> None:
        super().__init__(errors)
        self.errors = errors
        self.status = status


@dataclass(slots=True)
class ParsedRequest:
    """A validated request: one matrix row per transaction, in the spec's feature order."""

    X: np.ndarray
    transaction_ids: list[str | None]
    customer_ids: list[str | None]
    single: bool
    # A raw request's (serving/raw_path.py): ids assigned before scoring, time and keys to log.
    inference_ids: list[str] | None = None
    raw: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.transaction_ids)


def _error(loc: list[Any], msg: str, kind: str, value: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"loc": loc, "msg": msg, "type": kind}
    if value is not None:
        error["input"] = value
    return error


class RequestParser:
    """Validates bodies for one spec; build once per model spec, reuse for every request."""

    def __init__(self, spec: FeatureSpec, max_batch: int) -> None:
        self.spec = spec
        self.max_batch = max_batch
        self.names = spec.feature_names
        self._known = set(self.names) | set(ID_FIELDS)
        n = len(self.names)
        self._lo = np.full(n, -FLOAT32_MAX)
        self._hi = np.full(n, FLOAT32_MAX)
        inputs = spec.model_features  # derived ones included: a raw spec's rows carry them
        for i, feature in enumerate(inputs):
            lo, hi = feature.bounds
            if lo is not None:
                self._lo[i] = lo
            if hi is not None:
                self._hi[i] = hi
        self._int_cols = np.array([f.dtype == "int" for f in inputs])
        # Allowed codes as a lookup table (codes are small non-negative ints, e.g. MCCs):
        # one gather per column instead of np.isin's sort.
        self._categories: dict[int, np.ndarray] = {}
        self._code_lists: dict[int, np.ndarray] = {}  # codes a table cannot hold (negative)
        for i, f in enumerate(inputs):
            if f.kind is FeatureKind.categorical and f.categories:
                if min(f.categories) < 0:
                    self._code_lists[i] = np.array(f.categories, dtype=np.float64)
                    continue
                table = np.zeros(max(f.categories) + 1, dtype=bool)
                table[f.categories] = True
                self._categories[i] = table

    def parse(self, body: bytes) -> ParsedRequest:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            # NaN and Infinity are not JSON: orjson refuses them here, which is what we want.
            raise RequestInvalid(
                [_error(["body"], f"body is not valid JSON: {exc}", "json_invalid")]
            ) from None
        if isinstance(payload, dict):
            rows, single = [payload], True
        elif isinstance(payload, list):
            rows, single = payload, False
            if not rows:
                raise RequestInvalid(
                    [_error(["body"], "the list holds no transaction", "too_short")]
                )
            if len(rows) > self.max_batch:
                raise RequestInvalid(
                    [
                        _error(
                            ["body"],
                            f"at most {self.max_batch} transactions per request "
                            f"(serving.max_batch), got {len(rows)}",
                            "too_long",
                        )
                    ]
                )
        else:
            raise RequestInvalid(
                [
                    _error(
                        ["body"],
                        "expected a transaction object or a list of them",
                        "model_attributes_type",
                    )
                ]
            )
        return self._rows(rows, single)

    def _rows(self, rows: list[Any], single: bool) -> ParsedRequest:
        names = self.names
        values: list[list[Any]] = []
        tx_ids: list[str | None] = []
        cust_ids: list[str | None] = []
        errors: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            where: list[Any] = ["body"] if single else ["body", i]
            if not isinstance(row, dict):
                errors.append(_error(where, "expected a transaction object", "dict_type"))
                continue
            missing = False
            try:
                picked = [row[name] for name in names]
            except KeyError:
                missing = True
                picked = [row.get(name) for name in names]
                errors.extend(
                    _error([*where, name], "Field required", "missing")
                    for name in names
                    if name not in row
                )
            # All features present and no more keys than features + ids: nothing extra.
            if (missing or len(row) > len(names)) and (extra := row.keys() - self._known):
                errors.extend(
                    _error([*where, key], "Extra inputs are not permitted", "extra_forbidden")
                    for key in sorted(extra)
                )
            for name, value in zip(names, picked, strict=True):
                # bool is an int subclass: refused by the exact type test, as a flag is no amount.
                if type(value) not in _NUMBER_TYPES and name in row:
                    errors.append(
                        _error(
                            [*where, name], "Input should be a valid number", "float_type", value
                        )
                    )
                elif type(value) is float and not math.isfinite(value):
                    errors.append(
                        _error([*where, name], "Input should be a finite number", "finite_number")
                    )
            tx_ids.append(self._id(row, "transaction_id", where, errors))
            cust_ids.append(self._id(row, "customer_id", where, errors))
            values.append(picked)
        if errors:
            raise RequestInvalid(errors)
        # Ranges, integrality and categories are checked by the service on the whole
        # micro-batch at once (``bad_rows``): one vectorised pass instead of one per request.
        X = np.array(values, dtype=np.float64)
        return ParsedRequest(X, tx_ids, cust_ids, single)

    @staticmethod
    def _id(
        row: dict[str, Any], key: str, where: list[Any], errors: list[dict[str, Any]]
    ) -> str | None:
        value = row.get(key)
        if value is None or (type(value) is str and len(value) <= _MAX_ID_LENGTH):
            return value
        if type(value) is int:
            return str(value)
        errors.append(
            _error(
                [*where, key],
                f"Input should be a string of at most {_MAX_ID_LENGTH} characters",
                "string_type",
            )
        )
        return None

    def bad_values(self, X: np.ndarray) -> np.ndarray:
        """Mask of the cells of ``X`` outside their feature's range, integrality or codes."""
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(X) | (self._lo > X) | (self._hi < X)
            bad |= self._int_cols & (np.floor(X) != X)
        for col, table in self._categories.items():
            column = X[:, col]
            inside = (column >= 0) & (column < len(table))
            codes = np.where(inside & ~bad[:, col], column, 0).astype(np.intp)
            bad[:, col] |= ~(inside & table[codes])
        for col, allowed in self._code_lists.items():
            bad[:, col] |= ~np.isin(X[:, col], allowed)
        return bad

    def bad_rows(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.bad_values(X).any(axis=1), dtype=bool)

    def value_errors(self, parsed: ParsedRequest) -> list[dict[str, Any]]:
        """The 422 details of a parsed request's out-of-range values (empty when none)."""
        errors: list[dict[str, Any]] = []
        bad = self.bad_values(parsed.X)
        X, single = parsed.X, parsed.single
        for row, col in zip(*np.nonzero(bad), strict=True):
            feature = self.spec.model_features[col]
            value = X[row, col]
            where: list[Any] = ["body"] if single else ["body", int(row)]
            errors.append(
                _error(
                    [*where, feature.name],
                    _value_message(feature, value),
                    "value_error",
                    _echo(float(value)),
                )
            )
        return errors

    def validate(self, parsed: ParsedRequest) -> ParsedRequest:
        """``parsed`` if every value is allowed, else RequestInvalid naming each bad one."""
        if errors := self.value_errors(parsed):
            raise RequestInvalid(errors)
        return parsed

    def parse_valid(self, body: bytes) -> ParsedRequest:
        """Parse and check values in one go (for callers that do not batch)."""
        return self.validate(self.parse(body))


def _value_message(feature: Any, value: float) -> str:
    if not math.isfinite(value):
        return "Input should be a finite number"
    lo, hi = _limits(feature)
    if value < lo or value > hi:
        return f"Input should be between {lo:g} and {hi:g}"
    if feature.dtype == "int" and not float(value).is_integer():
        return "Input should be a whole number"
    return f"Input should be one of the codes {feature.categories}"


def _echo(value: float) -> int | float:
    """The bad value as the client sent it: whole numbers as ints when exactly representable."""
    return int(value) if value.is_integer() and abs(value) <= 2**53 else value


def _limits(feature: Any) -> tuple[float, float]:
    lo, hi = feature.bounds
    return (-FLOAT32_MAX if lo is None else lo, FLOAT32_MAX if hi is None else hi)


def openapi_model(spec: FeatureSpec) -> type[BaseModel]:
    """The request body as a pydantic model, for the OpenAPI document (same rules as above)."""
    fields: dict[str, Any] = {
        "transaction_id": (str | None, Field(None, max_length=_MAX_ID_LENGTH)),
        "customer_id": (str | None, Field(None, max_length=_MAX_ID_LENGTH)),
    }
    if spec.derived:  # a raw transaction: its time and keys; the derived features are computed
        fields.pop("customer_id")
        time_kind: Any = float if spec.timestamp_kind == "seconds" else str
        fields[spec.timestamp_column] = (time_kind, Field(..., description="The event time"))
        for key in spec.keys:
            fields[key] = (str | int, Field(..., description="A key derived features use"))
    for feature in spec.features:
        lo, hi = _limits(feature) if feature.dtype == "float" else feature.bounds
        kind: Any = int if feature.dtype == "int" else float
        extra: dict[str, Any] = {}
        if feature.kind is FeatureKind.categorical and feature.categories:
            extra["json_schema_extra"] = {"enum": feature.categories}
        fields[feature.name] = (
            kind,
            Field(..., ge=lo, le=hi, description=feature.description or None, **extra),
        )
    model: type[BaseModel] = create_model(
        f"Transaction_{spec.name}",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        **fields,
    )
    return model
