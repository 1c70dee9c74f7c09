"""Settings: one class, read from defaults < ``fraudops.yaml`` < ``FRAUDOPS_*`` variables.

``settings.py`` holds the ``Settings`` class and its loading; the sections live in
``model_sections.py`` (data, lake, MLflow, training, gate, monitoring) and ``ops_sections.py``
(serving, dashboard, labels, alerts, scheduler, retrain, simulation), ``feature_sections.py``
(derived features' online state); ``base.py`` the names each
kind of choice may take.
"""

from fraudops.config.base import DecisionPolicy, LogBackend, Section, ThresholdPolicy, TrainerName
from fraudops.config.compute_sections import ComputeSettings, EngineName
from fraudops.config.feature_sections import FeaturesSettings, OnlineStoreName
from fraudops.config.maintenance_sections import MaintenanceSettings
from fraudops.config.model_sections import (
    DataSettings,
    DriftRule,
    GateSettings,
    LakeSettings,
    LogRegParams,
    MlflowSettings,
    MonitoringSettings,
    TrainingSettings,
    XGBoostParams,
)
from fraudops.config.ops_sections import (
    AlertSettings,
    ConceptDrift,
    DashboardSettings,
    LabelsSettings,
    RetrainSettings,
    RiskTier,
    Scenario,
    SchedulerJob,
    SchedulerSettings,
    ServingSettings,
    SimulationSettings,
)
from fraudops.config.settings import (
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    Settings,
    describe_settings,
    load_settings,
    resolve_config_file,
)
from fraudops.config.storage_sections import S3Settings, without_password

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "AlertSettings",
    "ComputeSettings",
    "ConceptDrift",
    "DashboardSettings",
    "DataSettings",
    "DecisionPolicy",
    "DriftRule",
    "EngineName",
    "FeaturesSettings",
    "GateSettings",
    "LabelsSettings",
    "LakeSettings",
    "LogBackend",
    "LogRegParams",
    "MaintenanceSettings",
    "MlflowSettings",
    "MonitoringSettings",
    "OnlineStoreName",
    "RetrainSettings",
    "RiskTier",
    "S3Settings",
    "Scenario",
    "SchedulerJob",
    "SchedulerSettings",
    "Section",
    "ServingSettings",
    "Settings",
    "SimulationSettings",
    "ThresholdPolicy",
    "TrainerName",
    "TrainingSettings",
    "XGBoostParams",
    "describe_settings",
    "load_settings",
    "resolve_config_file",
    "without_password",
]
