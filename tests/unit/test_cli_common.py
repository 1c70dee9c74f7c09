"""CLI tables print data verbatim, never as Rich markup."""

from __future__ import annotations

from rich.console import Console

from fraudops.cli._common import kv_table, records_table


def _render(table: object) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_bracketed_values_are_shown_as_they_are() -> None:
    text = _render(records_table("alerts", [{"subject": "[fraudops] drift [bold]x[/]"}]))
    assert "[fraudops] drift [bold]x[/]" in text
    assert "[red]" in _render(kv_table("t", {"note": "[red]"}))
