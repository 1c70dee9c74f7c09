"""The first half of the demo job: data → lake → train (the first champion).

``prepare_champion`` is what bench/pipeline.py measures and what every simulation starts from;
`fraudops demo` then runs the 12-month simulation of the default scenario
(the ``fraudops.simulation`` package): drift, detection, automatic retraining, recovery.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fraudops.config import Settings
from fraudops.progress import Reporter


@dataclass
class PreparedChampion:
    spec: str
    rows: int
    data_files: dict[str, Any]
    load: dict[str, Any]
    training: dict[str, Any]
    exit_code: int
    champion: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prepare_champion(
    settings: Settings,
    *,
    rows: int | None = None,
    drifted_sets: bool = True,
    progress: Reporter | None = None,
) -> PreparedChampion:
    """Generate the synthetic data, load it (replacing `transactions`), train and gate.

    Re-runnable. ``drifted_sets``: also write seed 000's drifted files beside the training set.
    """
    from fraudops.data.files import write_datasets
    from fraudops.lake import Lake, load_file
    from fraudops.orchestration.training_pipeline import run_training

    progress = progress or Reporter()
    spec = settings.feature_spec("transactions30")
    files = write_datasets(
        settings,
        spec,
        settings.data_dir,
        rows=rows,
        patterns=None if drifted_sets else [],
        progress=progress,
    )
    with Lake.open(settings, spec.name) as lake:
        with progress.step("Creating lake tables"):
            lake.init()
        report = load_file(lake, files.transactions, mode="replace", progress=progress)
    result = run_training(settings, spec_name=spec.name, progress=progress, raise_on_gate=False)
    return PreparedChampion(
        spec=spec.name,
        rows=report.rows,
        data_files=files.to_dict(),
        load=report.to_dict(),
        training=result.to_dict(),
        exit_code=result.exit_code,
        champion=result.champion_after,
    )
