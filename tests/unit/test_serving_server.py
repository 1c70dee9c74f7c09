"""The settings file handed to the server's children: complete, secrets included, private."""

from __future__ import annotations

import stat
from pathlib import Path

from fraudops.config import load_settings
from fraudops.serving.server import write_settings_file


def test_children_get_the_real_secrets_in_a_private_file(home: Path) -> None:
    settings = load_settings(
        home=home,
        serving={"tokens": ["t-1", "t-2"], "port": 9999},
        alerts={"webhook_url": "http://hooks.local/abc"},
    )
    path = write_settings_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    child = load_settings(path)
    assert [t.get_secret_value() for t in child.serving.tokens] == ["t-1", "t-2"]
    assert child.alerts.webhook_url is not None
    assert child.alerts.webhook_url.get_secret_value() == "http://hooks.local/abc"
    assert child.serving.port == 9999 and child.home_dir == settings.home_dir
