"""CSV cells that spreadsheets show and never run: every CSV the app writes (Insights, the audit
export) passes its cells through spreadsheet_safe."""

# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell):
    """The cell for a CSV writer: a leading quote before text a spreadsheet would run as a formula
    (CSV injection); numbers stay numbers (a negative number is no formula), None is empty."""
    if cell is None:
        return ""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return cell
    text = str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
