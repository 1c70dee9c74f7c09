"""Ground truth: label events for logged predictions, their ingestion, simulation and coverage.

A label is an *event* (``labels`` table): who confirmed what about which prediction, and when.
Events are only appended, never updated; the label in force for a prediction is its latest event
(:func:`latest_labels`).
"""

from fraudops.labels.coverage import CoverageReport, DayCoverage, label_coverage
from fraudops.labels.ingest import (
    DuplicateLabel,
    IngestReport,
    LabelConflict,
    LabelEvent,
    LabelsValidationError,
    UnknownLabel,
    ingest_events,
    ingest_labels,
)
from fraudops.labels.simulate import SimulationReport, simulate_labels
from fraudops.labels.store import LABEL_COLUMNS, label_events, latest_labels, latest_of

__all__ = [
    "LABEL_COLUMNS",
    "CoverageReport",
    "DayCoverage",
    "DuplicateLabel",
    "IngestReport",
    "LabelConflict",
    "LabelEvent",
    "LabelsValidationError",
    "SimulationReport",
    "UnknownLabel",
    "ingest_events",
    "ingest_labels",
    "label_coverage",
    "label_events",
    "latest_labels",
    "latest_of",
    "simulate_labels",
]
