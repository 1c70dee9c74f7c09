"""Settings precedence: package defaults < fraudops.yaml (or --config) < FRAUDOPS_* env vars."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudops.config import describe_settings, load_settings
from fraudops.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_are_the_seeds() -> None:
    s = load_settings()
    assert s.gate.min_roc_auc == 0.85 and s.gate.min_pr_auc == 0.50
    assert s.gate.min_recall == {"logreg": 0.60}
    assert s.monitoring.psi_threshold == 0.2 and s.monitoring.ks_pvalue == 0.05
    assert s.monitoring.data_window_days == 7
    # Not the seed's 30: legitimate labels take up to 30 days to mature (see config.py).
    assert s.monitoring.performance_window_days == 60
    assert s.monitoring.schedule == "0 2 * * *" and s.monitoring.min_samples == 100
    assert s.data.rows == 284_080 and s.data.fraud_rate == 0.005
    assert s.data.drift_patterns["run3"]["credit_limit"].factor == 8.0
    assert s.home == Path("fraudops-home")
    assert s.catalog_uri.startswith("sqlite:///") and s.catalog_uri.endswith("lake/catalog.db")


def test_yaml_in_cwd_overrides_defaults_and_env_overrides_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "fraudops.yaml", "gate:\n  min_roc_auc: 0.9\n  min_pr_auc: 0.6\nspec: ulb\n")
    s = load_settings()
    assert (s.gate.min_roc_auc, s.gate.min_pr_auc, s.spec) == (0.9, 0.6, "ulb")
    assert s.gate.champion_margin == 0.005  # untouched keys keep their defaults

    monkeypatch.setenv("FRAUDOPS_GATE__MIN_ROC_AUC", "0.95")
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "elsewhere"))
    s = load_settings()
    assert s.gate.min_roc_auc == 0.95  # env beats yaml
    assert s.gate.min_pr_auc == 0.6  # yaml still beats defaults for the sibling key
    assert s.home_dir == (tmp_path / "elsewhere").resolve()

    sources = {row["key"]: row["source"] for row in describe_settings(s)}
    assert sources["gate.min_roc_auc"] == "env FRAUDOPS_GATE__MIN_ROC_AUC"
    assert sources["gate.min_pr_auc"].endswith("fraudops.yaml")
    assert sources["gate.champion_margin"] == "default"
    assert sources["home"] == "env FRAUDOPS_HOME"


def test_explicit_config_file_wins_over_cwd_file(tmp_path: Path) -> None:
    write(tmp_path / "fraudops.yaml", "training:\n  trainer: logreg\n")
    other = write(tmp_path / "other.yaml", "training:\n  holdout_fraction: 0.3\n")
    s = load_settings(other)
    assert s.training.holdout_fraction == 0.3
    assert s.training.trainer == "xgboost"  # the cwd file is not read when --config is given


def test_user_spec_adds_to_builtins(tmp_path: Path) -> None:
    write(
        tmp_path / "fraudops.yaml",
        """
specs:
  mine:
    timestamp_column: ts
    label_column: y
    features:
      - {name: amount, min: 0}
      - {name: channel, kind: categorical, dtype: int, categories: [1, 2]}
""",
    )
    s = load_settings()
    assert set(s.specs) == {"transactions30", "ulb", "cards", "mine"}
    mine = s.feature_spec("mine")
    assert mine.name == "mine" and mine.feature_names == ["amount", "channel"]


def test_unknown_spec_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown spec 'nope'.*transactions30, ulb"):
        load_settings().feature_spec("nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gate:\n  min_roc_auc: high\n", "gate.min_roc_auc"),
        ("gate:\n  min_rocauc: 0.9\n", "gate.min_rocauc"),
        (
            "specs:\n  bad:\n    timestamp_column: t\n    label_column: y\n    features: []\n",
            "declares no features",
        ),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "fraudops.yaml", text)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.yaml")
