"""The dashboard's CSV export: what a spreadsheet would run as a formula is neutralised."""

from __future__ import annotations

import csv
import io

import pytest

from fraudops.dashboard.routes.deps import csv_text


@pytest.mark.parametrize(
    "text",
    [
        "=HYPERLINK(1)",
        "+1+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "-1",  # text that looks like a number is still text: quoted
    ],
)
def test_formula_text_is_quoted(text: str) -> None:
    [[header], [cell]] = list(csv.reader(io.StringIO(csv_text(["c"], [[text]]), newline="")))
    assert header == "c" and cell == "'" + text


def test_numbers_stay_numbers_and_plain_text_is_unchanged() -> None:
    rows = [[-1.5, -3, "a-b", "2027-01-01", None, True]]
    assert csv_text(["x", "y", "z", "t", "n", "b"], rows) == (
        "x,y,z,t,n,b\r\n-1.5,-3,a-b,2027-01-01,,True\r\n"
    )
    assert csv_text(["-x"], []) == "'-x\r\n"  # a header is text too
    # A carriage return inside a cell is quoted: it cannot start a row of its own.
    assert csv_text(["c"], [["a\rb"]]) == 'c\r\n"a\rb"\r\n'
