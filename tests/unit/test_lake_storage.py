"""lake.storage: what a ``lake.warehouse`` setting means, and pyiceberg's S3 properties."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudops.config import describe_settings, load_settings
from fraudops.errors import ConfigError
from fraudops.lake.storage import missing_bucket, s3_properties, warehouse_of


def test_default_and_folder_warehouses_are_local(home: Path, tmp_path: Path) -> None:
    default = warehouse_of(load_settings(home=home))
    assert default.folder == home / "lake" / "warehouse" and default.bucket is None
    folder = warehouse_of(load_settings(home=home, lake={"warehouse": str(tmp_path / "w")}))
    assert folder.folder == tmp_path / "w"
    # No bucket to check, and no network call made for a folder.
    assert missing_bucket(load_settings(home=home), default) is None


def test_s3_warehouse_names_its_bucket(home: Path) -> None:
    settings = load_settings(home=home, lake={"warehouse": "s3://lake-bucket/some/prefix"})
    where = warehouse_of(settings)
    assert where.bucket == "lake-bucket" and where.folder is None


@pytest.mark.parametrize(
    ("uri", "needle"), [("s3:///prefix", "names no bucket"), ("gs://b/p", "unsupported scheme")]
)
def test_unusable_warehouses_name_the_setting(home: Path, uri: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=r"lake\.warehouse") as caught:
        warehouse_of(load_settings(home=home, lake={"warehouse": uri}))
    assert needle in str(caught.value)


def test_s3_properties_leave_unset_credentials_to_aws(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    bare = s3_properties(load_settings(home=home))
    assert bare == {"s3.region": "eu-west-3", "s3.connect-timeout": "5.0"}

    given = s3_properties(
        load_settings(
            home=home,
            s3={
                "endpoint": "http://127.0.0.1:9000",
                "region": "local",
                "access_key_id": "AK",
                "secret_access_key": "sekrit",
            },
        )
    )
    assert given["s3.endpoint"] == "http://127.0.0.1:9000" and given["s3.region"] == "local"
    assert given["s3.access-key-id"] == "AK" and given["s3.secret-access-key"] == "sekrit"


def test_the_secret_is_never_shown(home: Path) -> None:
    settings = load_settings(home=home, s3={"secret_access_key": "sekrit"})
    shown = {row["key"]: row["value"] for row in describe_settings(settings)}
    assert shown["s3.secret_access_key"] == "**********"
    assert "sekrit" not in repr(settings) and "sekrit" not in str(shown)
