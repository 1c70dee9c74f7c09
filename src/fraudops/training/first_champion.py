"""The first half of the demo job: data → lake → train (the first champion).

``prepare_champion`` is what bench/pipeline.py measures and what every simulation starts from;
`fraudops demo` then runs the 12-month simulation of the default scenario
(the ``fraudops.simulation`` package): drift, detection, automatic retraining, recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraudops.data.files import DatasetFiles, write_datasets
from fraudops.errors import ConfigError
from fraudops.lake.loader import LoadReport, load_file
from fraudops.progress import Reporter
from fraudops.training.backend import TrainingContext
from fraudops.training.pipeline import run_training
from fraudops.training.result import TrainingResult

DEMO_SPEC = "transactions30"  # the synthetic generator's spec


@dataclass
class PreparedChampion:
    spec: str
    rows: int
    data_files: DatasetFiles
    load: LoadReport
    training: TrainingResult
    exit_code: int
    champion: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "rows": self.rows,
            "data_files": self.data_files.to_dict(),
            "load": self.load.to_dict(),
            "training": self.training.to_dict(),
            "exit_code": self.exit_code,
            "champion": self.champion,
        }


def prepare_champion(
    ctx: TrainingContext,
    *,
    rows: int | None = None,
    drifted_sets: bool = True,
    progress: Reporter | None = None,
) -> PreparedChampion:
    """Generate the synthetic data, load it (replacing `transactions`), train and gate.

    Re-runnable; creates the lake tables (the demo runs on an empty home). ``drifted_sets``:
    also write seed 000's drifted files beside the training set. The runtime's spec must be
    the generator's (transactions30).
    """
    settings, spec, lake = ctx.settings, ctx.spec, ctx.lake
    if spec.name != DEMO_SPEC:
        raise ConfigError(f"the demo trains spec {DEMO_SPEC!r}, not {spec.name!r}")
    progress = progress or Reporter()
    files = write_datasets(
        settings,
        spec,
        settings.data_dir,
        rows=rows,
        patterns=None if drifted_sets else [],
        progress=progress,
    )
    with progress.step("Creating lake tables"):
        lake.init()
    report = load_file(lake, files.transactions, mode="replace", progress=progress)
    result = run_training(ctx, progress=progress, raise_on_gate=False)
    return PreparedChampion(
        spec=spec.name,
        rows=report.rows,
        data_files=files,
        load=report,
        training=result,
        exit_code=result.exit_code,
        champion=result.champion_after,
    )
