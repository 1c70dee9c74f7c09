"""The demo job: generate → lake init → load → train (→ later issues: serve, monitor, simulate)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fraudops.config import Settings
from fraudops.progress import Reporter


@dataclass
class DemoResult:
    spec: str
    rows: int
    data_files: dict[str, Any]
    load: dict[str, Any]
    training: dict[str, Any]
    exit_code: int
    home: str
    catalog_uri: str
    tracking_uri: str
    mlflow_ui: str
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_demo(
    settings: Settings, *, rows: int | None = None, progress: Reporter | None = None
) -> DemoResult:
    """Run the whole job on embedded defaults. Re-runnable: the load replaces `transactions`."""
    from fraudops.data.files import write_datasets
    from fraudops.lake import Lake
    from fraudops.orchestration.training_pipeline import run_training

    progress = progress or Reporter()
    spec = settings.feature_spec("transactions30")
    files = write_datasets(settings, spec, settings.data_dir, rows=rows, progress=progress)
    lake = Lake(settings, spec)
    with progress.step("Creating lake tables"):
        lake.init()
    report = lake.load_file(files.transactions, mode="replace", progress=progress)
    result = run_training(settings, spec_name=spec.name, progress=progress, raise_on_gate=False)
    return DemoResult(
        spec=spec.name,
        rows=report.rows,
        data_files=files.to_dict(),
        load=report.to_dict(),
        training=result.to_dict(),
        exit_code=result.exit_code,
        home=str(settings.home_dir),
        catalog_uri=settings.catalog_uri,
        tracking_uri=settings.tracking_uri,
        mlflow_ui=f"mlflow ui --backend-store-uri {settings.tracking_uri}",
        timings=dict(progress.timings),
    )
