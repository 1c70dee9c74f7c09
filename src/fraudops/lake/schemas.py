"""The lake's tables and their Iceberg schemas, derived from the feature spec.

Every table lives in the namespace of one spec (features differ per spec), so a schema function
takes the spec even when the table has no feature columns. Timestamps are ``timestamptz`` (µs, UTC).
Fields are optional except the ids a row cannot exist without. A column added after tables
exist goes at the end of its table, optional: ``fraudops lake init`` then adds it to those tables.
"""

from __future__ import annotations

from collections.abc import Callable

from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (
    BooleanType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from fraudops.errors import ConfigError, LakeError
from fraudops.spec import Feature, FeatureSpec

TRANSACTIONS = "transactions"
PREDICTIONS = "predictions"
LABELS = "labels"
MONITORING_RUNS = "monitoring_runs"
FEATURE_DRIFT = "feature_drift"
ALERTS = "alerts"
MODEL_EVENTS = "model_events"
# Kept by fraudops.aggregates for the dashboard (derived: `fraudops lake aggregates --rebuild`).
PREDICTION_STATS = "prediction_stats"
LABEL_STATS = "label_stats"
LABEL_INGESTS = "label_ingests"

TABLES: list[str] = [
    TRANSACTIONS,
    PREDICTIONS,
    LABELS,
    MONITORING_RUNS,
    FEATURE_DRIFT,
    ALERTS,
    MODEL_EVENTS,
    PREDICTION_STATS,
    LABEL_STATS,
    LABEL_INGESTS,
]

# Generated id of `transactions` when the spec declares none (ULB): labels join on it later.
GENERATED_ID_COLUMN = "transaction_id"
BATCH_ID_COLUMN = "_batch_id"
LOADED_AT_COLUMN = "_loaded_at"

# The predictions column that `day(...)` partitions on.
PREDICTIONS_PARTITION_SOURCE = "request_time"

STRING, DOUBLE, LONG, INT, BOOL, TIMESTAMPTZ = (
    StringType(),
    DoubleType(),
    LongType(),
    IntegerType(),
    BooleanType(),
    TimestamptzType(),
)

# (name, type, required)
Column = tuple[str, IcebergType, bool]


def _opt(name: str, field_type: IcebergType) -> Column:
    return (name, field_type, False)


def _req(name: str, field_type: IcebergType) -> Column:
    return (name, field_type, True)


def _schema(table: str, columns: list[Column]) -> Schema:
    # DuckDB (and most SQL engines) fold identifier case: `Amount` and `amount` would be ambiguous.
    seen: dict[str, str] = {}
    for name, _, _ in columns:
        if name.lower() in seen:
            raise ConfigError(
                f"table {table!r}: column {name!r} clashes with column {seen[name.lower()]!r} "
                "(SQL column names are case-insensitive); rename the feature in the spec"
            )
        seen[name.lower()] = name
    return Schema(
        *(
            NestedField(field_id=i, name=name, field_type=field_type, required=required)
            for i, (name, field_type, required) in enumerate(columns, start=1)
        )
    )


def feature_type(feature: Feature) -> IcebergType:
    return LONG if feature.dtype == "int" else DOUBLE


def _feature_columns(spec: FeatureSpec) -> list[Column]:
    """The plain features: what raw data carries (``transactions``, and ``predictions`` first)."""
    return [_opt(f.name, feature_type(f)) for f in spec.features]


def _derived_columns(spec: FeatureSpec) -> list[Column]:
    """The derived features as the model saw them (``predictions`` only: ``transactions`` stays
    raw, its derived values are computed point in time on read)."""
    plain = set(spec.raw_feature_names)
    return [_opt(f.name, feature_type(f)) for f in spec.model_features if f.name not in plain]


def transaction_id_column(spec: FeatureSpec) -> str:
    """The id column of `transactions`: the spec's, else the generated ``transaction_id``."""
    return spec.id_column or GENERATED_ID_COLUMN


def timestamp_type(spec: FeatureSpec) -> IcebergType:
    return TIMESTAMPTZ if spec.timestamp_kind == "datetime" else DOUBLE


def transactions_schema(spec: FeatureSpec) -> Schema:
    columns = [_req(transaction_id_column(spec), STRING)]
    if spec.customer_column:
        columns.append(_opt(spec.customer_column, STRING))
    # The keys derived features aggregate by (a terminal): ids as text, like the customer's.
    columns += [_opt(k, STRING) for k in spec.keys if k != spec.customer_column]
    # A timestamp that is also a feature keeps its feature type, in the feature list.
    if spec.timestamp_column not in spec.feature_names:
        columns.append(_opt(spec.timestamp_column, timestamp_type(spec)))
    columns += _feature_columns(spec)
    columns.append(_opt(spec.label_column, INT))
    columns += [_opt(BATCH_ID_COLUMN, STRING), _opt(LOADED_AT_COLUMN, TIMESTAMPTZ)]
    return _schema(TRANSACTIONS, columns)


# The one rule for a transaction's amount in ``predictions``: an ``amount`` column of its own,
# which the writers fill from the spec's amount feature, unless a feature already has that name up
# to case (ULB's ``Amount``): then that feature's column is the amount.
AMOUNT = "amount"


def amount_copied(spec: FeatureSpec) -> bool:
    """Whether ``predictions`` has an ``amount`` column of its own (from ``spec.amount_column``)."""
    return not any(name.lower() == AMOUNT for name in spec.feature_names)


def predictions_amount_column(spec: FeatureSpec) -> str:
    """The ``predictions`` column holding a transaction's amount (``amount``, else ULB's
    ``Amount`` feature)."""
    if amount_copied(spec):
        return AMOUNT
    return next(n for n in spec.feature_names if n.lower() == AMOUNT)


def served_raw_columns(spec: FeatureSpec) -> list[str]:
    """The raw columns a served prediction of a spec with derived features keeps beside its
    features, so its derived values can be recomputed offline (the skew check, the store's warm
    start): the transaction's time and the keys a base column does not already hold."""
    if not spec.derived:
        return []
    base = {"inference_id", PREDICTIONS_PARTITION_SOURCE, "transaction_id", "customer_id"}
    return [c for c in dict.fromkeys([spec.timestamp_column, *spec.keys]) if c not in base]


def served_key_column(spec: FeatureSpec, key: str) -> str:
    """The ``predictions`` column holding a served transaction's ``key``: its own, or
    ``customer_id`` for the customer key of that name."""
    return key if key in served_raw_columns(spec) else "customer_id"


def predictions_schema(spec: FeatureSpec) -> Schema:
    columns = [
        _req("inference_id", STRING),
        _opt(PREDICTIONS_PARTITION_SOURCE, TIMESTAMPTZ),
        _opt("model_name", STRING),
        _opt("model_version", STRING),
        _opt("run_id", STRING),
        _opt("transaction_id", STRING),
        _opt("customer_id", STRING),
    ]
    if amount_copied(spec):
        columns.append(_opt(AMOUNT, DOUBLE))
    columns += _feature_columns(spec)  # the plain features; the derived ones go last
    columns += [
        _opt("probability", DOUBLE),
        _opt("prediction", INT),
        _opt("threshold", DOUBLE),
        _opt("risk_tier", STRING),
        _opt("latency_ms", DOUBLE),
        _opt("model_latency_ms", DOUBLE),
        _opt("reason_codes", STRING),  # JSON
        _opt("shadow_version", STRING),
        _opt("shadow_probability", DOUBLE),
    ]
    # Last, derived features then the served raw columns: a table created before the spec
    # derived features gains them by `lake init` (lake/evolution.py appends optional columns).
    columns += _derived_columns(spec)
    columns += [
        _opt(c, timestamp_type(spec) if c == spec.timestamp_column else STRING)
        for c in served_raw_columns(spec)
    ]
    return _schema(PREDICTIONS, columns)


def labels_schema(spec: FeatureSpec) -> Schema:
    return _schema(
        LABELS,
        [
            _req("event_id", STRING),
            _opt("inference_id", STRING),
            _opt("transaction_id", STRING),
            _opt("label", INT),
            _opt("confirmed_at", TIMESTAMPTZ),
            _opt("source", STRING),
            _opt("notes", STRING),
            _opt("ingested_at", TIMESTAMPTZ),
        ],
    )


def monitoring_runs_schema(spec: FeatureSpec) -> Schema:
    return _schema(
        MONITORING_RUNS,
        [
            _req("run_id", STRING),
            _opt("started_at", TIMESTAMPTZ),
            _opt("finished_at", TIMESTAMPTZ),
            _opt("as_of", TIMESTAMPTZ),
            _opt("model_name", STRING),
            _opt("model_version", STRING),
            _opt("window_start", TIMESTAMPTZ),
            _opt("window_end", TIMESTAMPTZ),
            _opt("n_current", LONG),
            _opt("n_labelled", LONG),
            _opt("drifted_count", INT),
            _opt("drifted_share", DOUBLE),
            _opt("mean_psi", DOUBLE),
            _opt("max_psi", DOUBLE),
            _opt("median_psi", DOUBLE),
            _opt("score_psi", DOUBLE),
            _opt("roc_auc", DOUBLE),
            _opt("pr_auc", DOUBLE),
            _opt("precision", DOUBLE),
            _opt("recall", DOUBLE),
            _opt("f1", DOUBLE),
            _opt("roc_auc_degradation_pct", DOUBLE),
            _opt("data_drift_detected", BOOL),
            _opt("model_drift_detected", BOOL),
            _opt("status", STRING),
            _opt("report_path", STRING),
            _opt("summary", STRING),  # JSON
        ],
    )


def feature_drift_schema(spec: FeatureSpec) -> Schema:
    return _schema(
        FEATURE_DRIFT,
        [
            _req("run_id", STRING),
            _req("feature", STRING),
            _opt("kind", STRING),
            _opt("psi", DOUBLE),
            _opt("ks_statistic", DOUBLE),
            _opt("ks_pvalue", DOUBLE),
            _opt("chi2_statistic", DOUBLE),
            _opt("chi2_pvalue", DOUBLE),
            _opt("wasserstein", DOUBLE),
            _opt("jensen_shannon", DOUBLE),
            _opt("severity", STRING),
            _opt("drifted", BOOL),
            _opt("as_of", TIMESTAMPTZ),
        ],
    )


def alerts_schema(spec: FeatureSpec) -> Schema:
    return _schema(
        ALERTS,
        [
            _req("alert_id", STRING),
            _opt("run_id", STRING),
            _opt("created_at", TIMESTAMPTZ),
            _opt("channel", STRING),
            _opt("severity", STRING),
            _opt("subject", STRING),
            _opt("body", STRING),
            _opt("delivered", BOOL),
            _opt("attempts", INT),
            _opt("error", STRING),
            # Set on every row of the alert (one per channel) by `fraudops alerts ack`.
            _opt("acknowledged_at", TIMESTAMPTZ),
            _opt("acknowledged_by", STRING),
            _opt("ack_note", STRING),
            # AlertSummary.incident_key: the cooldown's lookup (older rows: the body's last line).
            _opt("incident_key", STRING),
        ],
    )


def model_events_schema(spec: FeatureSpec) -> Schema:
    return _schema(
        MODEL_EVENTS,
        [
            _req("event_id", STRING),
            _opt("event_time", TIMESTAMPTZ),
            _opt("spec", STRING),
            _opt("model_name", STRING),
            _opt("version", STRING),
            _opt("run_id", STRING),
            _opt("event_type", STRING),  # registry.events.EventType
            _opt("trigger", STRING),  # registry.events.Trigger
            _opt("champion_before", STRING),
            _opt("champion_after", STRING),
            _opt("reason", STRING),
            _opt("metrics", STRING),  # JSON
            _opt("monitoring_run_id", STRING),
            _opt("actor", STRING),  # who: a person's name, or fraudops / simulation
        ],
    )


# The aggregates' fixed histograms: 20 score bins over [0, 1] and log-spaced latency bins
# (fraudops.aggregates.bins holds the edges). Column names carry the bin number.
SCORE_BINS = 20
LATENCY_BINS = 60


def score_bin_columns() -> list[str]:
    return [f"score_bin_{i:02d}" for i in range(SCORE_BINS)]


def latency_bin_columns() -> list[str]:
    return [f"latency_bin_{i:02d}" for i in range(LATENCY_BINS)]


def prediction_stats_schema(spec: FeatureSpec) -> Schema:
    """One row per (hour, model_version) *and refresh*: a refresh appends the partial counts of
    the predictions it folded in, so a reader sums the rows of each key. Every column but
    the key is additive."""
    return _schema(
        PREDICTION_STATS,
        [
            _req("hour", TIMESTAMPTZ),
            _opt("model_version", STRING),  # "" when the prediction named none
            _opt("n", LONG),
            _opt("flagged", LONG),
            _opt("amount_sum", DOUBLE),
            _opt("flagged_amount_sum", DOUBLE),
            _opt("latency_sum_ms", DOUBLE),
            _opt("probability_sum", DOUBLE),
            _opt("tiers", STRING),  # JSON {tier: count}: tier names are settings
            *(_opt(c, LONG) for c in score_bin_columns()),
            *(_opt(c, LONG) for c in latency_bin_columns()),
        ],
    )


# Label delay buckets (confirmed_at - request_time) of label_stats, upper bounds in days.
LABEL_DELAY_BUCKETS: list[tuple[str, float]] = [
    ("delay_1d", 1),
    ("delay_3d", 3),
    ("delay_7d", 7),
    ("delay_14d", 14),
    ("delay_30d", 30),
    ("delay_over_30d", float("inf")),
]


def label_stats_schema(spec: FeatureSpec) -> Schema:
    """One row per (prediction day, model_version): the day's predictions against the label in
    force of each (latest confirmed_at wins). Recomputed whole per day when labels land."""
    return _schema(
        LABEL_STATS,
        [
            _req("day", TIMESTAMPTZ),  # midnight UTC of request_time
            _opt("model_version", STRING),
            _opt("n", LONG),
            _opt("labelled", LONG),
            _opt("unlabelled", LONG),
            _opt("tp", LONG),
            _opt("fp", LONG),
            _opt("tn", LONG),
            _opt("fn", LONG),
            _opt("tp_amount", DOUBLE),
            _opt("fn_amount", DOUBLE),
            _opt("fp_amount", DOUBLE),
            _opt("sources", STRING),  # JSON {source: labels}
            *(_opt(name, LONG) for name, _ in LABEL_DELAY_BUCKETS),
        ],
    )


def label_ingests_schema(spec: FeatureSpec) -> Schema:
    """One row per label ingestion: what became of its events (unknown and conflicting
    events are not all in `labels`: unknown ones are never written)."""
    return _schema(
        LABEL_INGESTS,
        [
            _req("batch", STRING),
            _opt("ingested_at", TIMESTAMPTZ),
            _opt("origin", STRING),
            _opt("received", LONG),
            _opt("written", LONG),
            _opt("unknown", LONG),
            _opt("duplicates", LONG),
            _opt("conflicts", LONG),
        ],
    )


SCHEMAS: dict[str, Callable[[FeatureSpec], Schema]] = {
    TRANSACTIONS: transactions_schema,
    PREDICTIONS: predictions_schema,
    LABELS: labels_schema,
    MONITORING_RUNS: monitoring_runs_schema,
    FEATURE_DRIFT: feature_drift_schema,
    ALERTS: alerts_schema,
    MODEL_EVENTS: model_events_schema,
    PREDICTION_STATS: prediction_stats_schema,
    LABEL_STATS: label_stats_schema,
    LABEL_INGESTS: label_ingests_schema,
}

# Table properties set at creation. The aggregates' watermark must move with their rows: a
# commit that lost a race fails (and its refresh starts over) instead of pyiceberg replaying
# the same partial counts on top of the winner's.
TABLE_PROPERTIES: dict[str, dict[str, str]] = {
    PREDICTION_STATS: {"commit.retry.num-retries": "0"},
    LABEL_STATS: {"commit.retry.num-retries": "0"},
}


def table_properties(name: str) -> dict[str, str]:
    return dict(TABLE_PROPERTIES.get(name, {}))


def check_table_name(name: str) -> str:
    if name not in SCHEMAS:
        raise LakeError(f"unknown lake table {name!r}: the tables are {', '.join(TABLES)}")
    return name


def table_schema(name: str, spec: FeatureSpec) -> Schema:
    """The schema of lake table ``name`` for ``spec`` (LakeError for an unknown table)."""
    return SCHEMAS[check_table_name(name)](spec)


def partition_spec(name: str, schema: Schema) -> PartitionSpec:
    """``predictions`` is partitioned by day of request; the other tables are small or unkeyed."""
    if name != PREDICTIONS:
        return UNPARTITIONED_PARTITION_SPEC
    source = schema.find_field(PREDICTIONS_PARTITION_SOURCE)
    return PartitionSpec(
        PartitionField(
            source_id=source.field_id,
            field_id=1000,
            transform=DayTransform(),
            name=f"{PREDICTIONS_PARTITION_SOURCE}_day",
        )
    )


def describe_schema(schema: Schema) -> list[tuple[str, str, bool]]:
    """(name, type, required) per column, for comparing a live table with the spec."""
    return [(f.name, str(f.field_type), f.required) for f in schema.fields]
