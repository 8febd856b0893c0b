"""The one CSV cell escaper every export uses (smilepass/spreadsheet.py)."""
from smilepass.spreadsheet import spreadsheet_safe


def test_formula_starts_get_a_quote_and_other_cells_stay_as_they_are():
    for hostile in ("=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert spreadsheet_safe(hostile) == "'" + hostile
    assert spreadsheet_safe("a=b") == "a=b" and spreadsheet_safe("plain") == "plain"
    # Numbers stay numbers (a negative number is no formula); None is an empty cell.
    assert spreadsheet_safe(-3) == -3 and spreadsheet_safe(2.5) == 2.5 and spreadsheet_safe(None) == ""
    # Anything else is written as its text, escaped like text.
    assert spreadsheet_safe(True) == "True"
    assert spreadsheet_safe(type("Lazy", (), {"__str__": lambda self: "=cmd"})()) == "'=cmd"
