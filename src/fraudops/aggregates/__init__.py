"""Aggregates kept in the lake for the dashboard, so a page never scans raw ``predictions``.

- ``prediction_stats`` (per hour x model_version): counts, flagged, risk tiers, a score and a
  latency histogram, amounts (``predictions.refresh`` / ``rebuild``, watermark-incremental).
- ``label_stats`` (per prediction day x model_version): labelled predictions against the label
  in force, amounts caught and missed, sources, label delays (``labels.refresh`` recomputes
  the days that new labels or new predictions touch).
- ``label_ingests``: what became of each label batch (unknown, duplicate, conflicting).

``read`` serves them to the pages, cached by the tables' snapshot ids; ``hooks`` is what the
inference-log drainers and label ingestion call after their commits (best effort).
"""
