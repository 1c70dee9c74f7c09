"""The one settings class.

Precedence, lowest first: package defaults (below) < ``fraudops.yaml`` in the working folder (or the
file given with ``--config`` / ``FRAUDOPS_CONFIG``) < ``FRAUDOPS_<SECTION>__<KEY>`` environment
variables. Every path, URI, threshold, window and schedule lives here, with the seeds' defaults.
All state lives under ``home`` (``FRAUDOPS_HOME``, default ``./fraudops-home``).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from fraudops.config.compute_sections import ComputeSettings
from fraudops.config.feature_sections import FeaturesSettings, check_key_ttl
from fraudops.config.maintenance_sections import MaintenanceSettings
from fraudops.config.model_sections import (
    DataSettings,
    GateSettings,
    LakeSettings,
    MlflowSettings,
    MonitoringSettings,
    TrainingSettings,
)
from fraudops.config.ops_sections import (
    AlertSettings,
    DashboardSettings,
    LabelsSettings,
    RetrainSettings,
    SchedulerSettings,
    ServingSettings,
    SimulationSettings,
)
from fraudops.config.storage_sections import S3Settings, postgres_driver, without_password
from fraudops.errors import ConfigError
from fraudops.spec import BUILTIN_SPECS, FeatureSpec

DEFAULT_CONFIG_FILE = "fraudops.yaml"
ENV_PREFIX = "FRAUDOPS_"


def _builtin_specs() -> dict[str, FeatureSpec]:
    return dict(BUILTIN_SPECS)


class Settings(BaseSettings):
    """Everything fraudops can be told. See ``fraudops config show``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    home: Path = Field(Path("fraudops-home"), description="Folder that holds all state.")
    spec: str = Field("transactions30", description="Active feature spec (override: --spec).")
    specs: dict[str, FeatureSpec] = Field(
        default_factory=_builtin_specs, description="Built-in specs plus those of fraudops.yaml."
    )
    data: DataSettings = Field(default_factory=DataSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    compute: ComputeSettings = Field(default_factory=ComputeSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    labels: LabelsSettings = Field(default_factory=LabelsSettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)

    @field_validator("specs", mode="before")
    @classmethod
    def _merge_builtin_specs(cls, value: Any) -> Any:
        # A user's `specs:` adds to the built-ins (and may override one by name).
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {k: v.model_dump() for k, v in BUILTIN_SPECS.items()}
        for key, spec in value.items():
            raw = spec.model_dump() if isinstance(spec, FeatureSpec) else dict(spec)
            if not isinstance(spec, FeatureSpec) and "key_ttl_s" in raw:
                raise ValueError(
                    f"specs.{key}.key_ttl_s: set it once for every spec as features.key_ttl_s "
                    "(the online state forgets keys by it)"
                )
            raw["name"] = key
            merged[key] = raw
        return merged

    @model_validator(mode="after")
    def _stamp_key_ttl(self) -> Settings:
        # Both engines read time_since_last's cut-off from the spec (feature_spec() stamps it
        # again for a copy of these settings). A ttl that would cut a window is refused for the
        # active spec here, for another (a built-in one not in use) when it is asked for.
        if self.spec in self.specs:
            check_key_ttl(self.features, [self.specs[self.spec]])
        for key, spec in self.specs.items():
            if spec.key_ttl_s != self.features.key_ttl_s:
                self.specs[key] = spec.model_copy(update={"key_ttl_s": self.features.key_ttl_s})
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _active_config_file.get()
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    # ---- derived locations -------------------------------------------------------------

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def catalog_uri(self) -> str:
        uri = self.lake.catalog_uri
        return postgres_driver(uri) if uri else f"sqlite:///{self.home_dir / 'lake' / 'catalog.db'}"

    @property
    def warehouse(self) -> str:
        return self.lake.warehouse or (self.home_dir / "lake" / "warehouse").as_uri()

    @property
    def tracking_uri(self) -> str:
        uri = self.mlflow.tracking_uri
        return (
            postgres_driver(uri) if uri else f"sqlite:///{self.home_dir / 'mlflow' / 'mlflow.db'}"
        )

    @property
    def artifact_location(self) -> str:
        return self.mlflow.artifact_location or (self.home_dir / "mlflow" / "artifacts").as_uri()

    def spool_dir(self, spec_name: str | None = None) -> Path:
        base = self.serving.spool_dir
        spec = self.feature_spec(spec_name).name
        return (base.expanduser().resolve() if base else self.home_dir / "spool") / spec

    def redis_stream(self, spec_name: str | None = None) -> str:
        return f"{self.serving.redis_stream}:{self.feature_spec(spec_name).name}"

    @property
    def data_dir(self) -> Path:
        return self.home_dir / "data"

    def registered_model_name(self, spec_name: str | None = None) -> str:
        return f"{self.mlflow.model_name_prefix}-{spec_name or self.spec}"

    def feature_spec(self, name: str | None = None) -> FeatureSpec:
        """The spec called ``name`` (default: the active one); a ConfigError names the choices."""
        key = name or self.spec
        try:
            spec = self.specs[key]
        except KeyError:
            known = ", ".join(sorted(self.specs))
            raise ConfigError(f"unknown spec {key!r}: known specs are {known}") from None
        if spec.key_ttl_s != self.features.key_ttl_s:  # settings copied with other features
            spec = spec.model_copy(update={"key_ttl_s": self.features.key_ttl_s})
        try:
            check_key_ttl(self.features, [spec])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return spec


_active_config_file: ContextVar[Path | None] = ContextVar("fraudops_config_file", default=None)


def resolve_config_file(config: Path | str | None = None) -> Path | None:
    """The YAML file in force: ``config``, else ``$FRAUDOPS_CONFIG``, else ./fraudops.yaml."""
    explicit = config or os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    default = Path.cwd() / DEFAULT_CONFIG_FILE
    return default if default.is_file() else None


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults < YAML < environment (< explicit ``overrides``)."""
    from pydantic import ValidationError

    config_file = resolve_config_file(config)
    token = _active_config_file.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        where = f" (config file {config_file})" if config_file else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings{where}: {problems}") from None
    except Exception as exc:  # a YAML syntax error, say
        if config_file is None:
            raise
        raise ConfigError(f"cannot read config file {config_file}: {exc}") from None
    finally:
        _active_config_file.reset(token)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def describe_settings(settings: Settings, config: Path | str | None = None) -> list[dict[str, Any]]:
    """Every effective value with where it came from: default, the YAML file, or an env var."""
    config_file = resolve_config_file(config)
    yaml_keys: set[str] = set()
    if config_file is not None:
        yaml_keys = set(_flatten(YamlConfigSettingsSource(Settings, yaml_file=config_file)()))
    env_values = _flatten(EnvSettingsSource(Settings)())

    dumped = settings.model_dump(mode="json")
    # Specs are summarised: a spec is one entry, not 30 lines of feature attributes.
    specs = dumped.pop("specs")
    rows: list[dict[str, Any]] = []
    for key, value in _flatten(dumped).items():
        if key.endswith("_uri") and isinstance(value, str):
            value = without_password(value)  # a database password in a catalog/tracking URI
        rows.append(
            {
                "key": key,
                "value": value,
                "source": _source_of(key, yaml_keys, env_values, config_file),
            }
        )
    for name, spec in specs.items():
        key = f"specs.{name}"
        source = "default" if name in BUILTIN_SPECS else str(config_file)
        if any(k.startswith(key) for k in yaml_keys):
            source = str(config_file)
        rows.append(
            {
                "key": key,
                "value": f"{len(spec['features'])} features, label {spec['label_column']!r}",
                "source": source,
            }
        )
    return rows


def _source_of(
    key: str, yaml_keys: set[str], env_values: dict[str, Any], config_file: Path | None
) -> str:
    for env_key in env_values:
        if key == env_key or key.startswith(env_key + "."):
            return "env " + ENV_PREFIX + env_key.replace(".", "__").upper()
    for yaml_key in yaml_keys:
        if key == yaml_key or key.startswith(yaml_key + "."):
            return str(config_file)
    return "default"
