"""Ground truth: label events for logged predictions, their ingestion, simulation and coverage.

A label is an *event* (``labels`` table): who confirmed what about which prediction, and when.
Events are only appended, never updated; the label in force for a prediction is its latest event
(:func:`latest_labels`).
"""

from fraudops.labels.coverage import CoverageReport, DayCoverage, label_coverage
from fraudops.labels.ingest import (
    IngestReport,
    LabelEvent,
    LabelsValidationError,
    ingest_labels,
    labels_route_payload,
    latest_labels,
)
from fraudops.labels.simulate import SimulationReport, simulate_labels

__all__ = [
    "CoverageReport",
    "DayCoverage",
    "IngestReport",
    "LabelEvent",
    "LabelsValidationError",
    "SimulationReport",
    "ingest_labels",
    "label_coverage",
    "labels_route_payload",
    "latest_labels",
    "simulate_labels",
]
