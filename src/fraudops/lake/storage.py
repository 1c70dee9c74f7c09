"""Where the warehouse lives: a local folder, or a bucket of an S3-compatible object store.

pyiceberg writes and reads both through its FileIO (``fileio.py``); this module says which one a
``lake.warehouse`` setting means, gives pyiceberg the ``s3.*`` properties of the ``s3`` settings,
and checks that the bucket is there before anything is read or written. The lake never creates a
bucket (not even ``fraudops lake init``): a missing one is most often a typo or the wrong
endpoint, and a bucket is the object store owner's to make, with its own policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from fraudops.config import Settings
from fraudops.errors import ConfigError, LakeError

S3_SCHEMES = ("s3", "s3a")


@dataclass(frozen=True)
class Warehouse:
    """The ``lake.warehouse`` in force: exactly one of ``folder`` and ``bucket`` is set."""

    uri: str
    folder: Path | None = None
    bucket: str | None = None


def warehouse_of(settings: Settings) -> Warehouse:
    """The configured warehouse; a ConfigError naming ``lake.warehouse`` if it is not one."""
    uri = settings.warehouse
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Warehouse(uri, folder=Path(unquote(parsed.path)).expanduser().absolute())
    if parsed.scheme in S3_SCHEMES:
        if not parsed.netloc:
            raise ConfigError(f"lake.warehouse {uri!r} names no bucket (s3://bucket/prefix)")
        return Warehouse(uri, bucket=parsed.netloc)
    raise ConfigError(
        f"lake.warehouse {uri!r}: unsupported scheme {parsed.scheme!r} "
        "(a folder, file://... or s3://bucket/prefix)"
    )


def s3_properties(settings: Settings) -> dict[str, str]:
    """pyiceberg's FileIO properties for the ``s3`` settings (unset credentials: AWS's chain)."""
    s3 = settings.s3
    properties = {
        "s3.region": s3.effective_region,
        "s3.connect-timeout": str(s3.connect_timeout_s),
    }
    if s3.endpoint:
        properties["s3.endpoint"] = s3.endpoint
    if s3.access_key_id:
        properties["s3.access-key-id"] = s3.access_key_id
    if (secret := s3.secret) is not None:
        properties["s3.secret-access-key"] = secret
    return properties


def missing_bucket(
    settings: Settings, location: Warehouse | str, setting: str = "lake.warehouse"
) -> str | None:
    """Why the bucket of ``location`` (the warehouse, or an ``s3://`` URI of ``setting``) cannot
    be used if it does not exist; None if it does or the location is not on S3. A LakeError if
    the object store cannot be reached or refuses."""
    uri = location.uri if isinstance(location, Warehouse) else location
    parsed = urlparse(uri)
    bucket = parsed.netloc if parsed.scheme in S3_SCHEMES else None
    if not bucket:
        return None
    from pyarrow.fs import FileType, S3FileSystem

    s3 = settings.s3
    where = f"at {s3.endpoint} (s3.endpoint)" if s3.endpoint else "on AWS S3 (s3.endpoint unset)"
    try:
        fs = S3FileSystem(
            endpoint_override=s3.endpoint,
            region=s3.effective_region,
            access_key=s3.access_key_id,
            secret_key=s3.secret,
            connect_timeout=s3.connect_timeout_s,
            request_timeout=s3.connect_timeout_s,
        )
        kind = fs.get_file_info(bucket).type
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LakeError(
            f"{setting} {uri}: cannot reach bucket {bucket!r} {where}: {reason}"
        ) from None
    if kind == FileType.NotFound:
        return (
            f"{setting} {uri}: bucket {bucket!r} does not exist {where}; fraudops never creates "
            f"a bucket: create it with the object store's own tools (e.g. `aws s3 mb s3://{bucket}`"
            f"), or fix {setting} / s3.endpoint"
        )
    return None
