"""Tooth numbers: FDI ↔ Universal mapping both ways, parsing what clinicians type, storage and display."""
import pytest

from smilepass.support import teeth
from smilepass.support.teeth import FDI, UNIVERSAL, TeethRefused

# The anchors of the mapping, from the chart every dental office has on the wall.
PERMANENT = {1: 18, 8: 11, 9: 21, 16: 28, 17: 38, 24: 31, 25: 41, 32: 48, 3: 16, 14: 26, 19: 36, 30: 46}
PRIMARY = {"A": 55, "E": 51, "F": 61, "J": 65, "K": 75, "O": 71, "P": 81, "T": 85}


@pytest.mark.parametrize("universal,fdi", sorted(PERMANENT.items()))
def test_permanent_teeth_map_both_ways(universal, fdi):
    assert teeth.parse(str(universal), UNIVERSAL) == [fdi]
    assert teeth.display(str(fdi), UNIVERSAL) == str(universal)
    assert teeth.display(teeth.canonical(str(fdi), FDI), FDI) == str(fdi)


@pytest.mark.parametrize("universal,fdi", sorted(PRIMARY.items()))
def test_primary_teeth_map_both_ways(universal, fdi):
    assert teeth.parse(universal, UNIVERSAL) == [fdi]
    assert teeth.parse(universal.lower(), UNIVERSAL) == [fdi]
    assert teeth.display(str(fdi), UNIVERSAL) == universal


def test_the_mapping_is_complete_and_one_to_one():
    assert len(teeth.UNIVERSAL_TO_FDI) == 52 == len(teeth.FDI_TO_UNIVERSAL)
    fdi_numbers = {q * 10 + t for q in (1, 2, 3, 4) for t in range(1, 9)}
    fdi_numbers |= {q * 10 + t for q in (5, 6, 7, 8) for t in range(1, 6)}
    assert set(teeth.FDI_TO_UNIVERSAL) == fdi_numbers
    for name, fdi in teeth.UNIVERSAL_TO_FDI.items():
        assert teeth.FDI_TO_UNIVERSAL[fdi] == name


def test_every_tooth_round_trips_through_storage_in_both_notations():
    every = list(teeth.FDI_TO_UNIVERSAL)
    for chunk in (every[:32], every[32:]):
        stored = teeth.to_storage(chunk)
        shown_universal = teeth.display(stored, UNIVERSAL)
        shown_fdi = teeth.display(stored, FDI)
        assert teeth.canonical(shown_universal, UNIVERSAL) == stored
        assert teeth.canonical(shown_fdi, FDI) == stored


def test_separators_order_and_storage():
    # Commas, spaces, semicolons, "#" before Universal numbers: all as clinicians type them.
    assert teeth.canonical("36, 11 21", FDI) == "11,21,36"
    assert teeth.canonical("  11,,21 ;36 ", FDI) == "11,21,36"
    assert teeth.canonical("8,9", UNIVERSAL) == "11,21"
    assert teeth.canonical("#8, #9", UNIVERSAL) == "11,21"
    assert teeth.canonical("", FDI) == "" and teeth.canonical("  ", UNIVERSAL) == ""
    # Permanent teeth before primary ones in FDI order; Universal shows its own order around the mouth.
    stored = teeth.canonical("55 48 11 18", FDI)
    assert stored == "11,18,48,55"
    assert teeth.display(stored, FDI) == "11, 18, 48, 55"
    assert teeth.display(stored, UNIVERSAL) == "1, 8, 32, A"
    assert teeth.display("", UNIVERSAL) == ""


@pytest.mark.parametrize("typed,notation,fragment", [
    ("19", FDI, "“19” is not an FDI tooth number"),
    ("10", FDI, "“10”"),
    ("49", FDI, "“49”"),
    ("56", FDI, "“56”"),
    ("011", FDI, "“011”"),
    ("33", UNIVERSAL, "“33” is not a Universal tooth number"),
    ("0", UNIVERSAL, "“0”"),
    ("U", UNIVERSAL, "“U”"),
    ("11a", FDI, "“11a”"),
    ("UR1", UNIVERSAL, "“UR1”"),
])
def test_bad_tokens_are_named(typed, notation, fragment):
    with pytest.raises(TeethRefused) as refused:
        teeth.parse(f"11, {typed}" if notation == FDI else f"8, {typed}", notation)
    assert fragment in str(refused.value)


def test_the_other_notation_is_suggested_but_never_guessed():
    # 8 and A are Universal only: typed with FDI selected, the message says which notation they fit.
    with pytest.raises(TeethRefused, match="Choose Universal notation"):
        teeth.parse("8", FDI)
    with pytest.raises(TeethRefused, match="Choose Universal notation"):
        teeth.parse("A", FDI)
    # 36 is FDI only.
    with pytest.raises(TeethRefused, match="Choose FDI notation"):
        teeth.parse("36", UNIVERSAL)
    # 11–32 are valid in both: read in the notation the form says, never switched.
    assert teeth.parse("11", FDI) == [11]
    assert teeth.parse("11", UNIVERSAL) == [23]
    assert teeth.parse("21", UNIVERSAL) == [34]
    # Nothing to suggest for nonsense.
    with pytest.raises(TeethRefused) as refused:
        teeth.parse("99", UNIVERSAL)
    assert "Choose" not in str(refused.value)


def test_duplicates_and_too_many_are_refused():
    with pytest.raises(TeethRefused, match="Tooth 11 is listed twice"):
        teeth.parse("11, 21, 11", FDI)
    with pytest.raises(TeethRefused, match="listed twice"):
        teeth.parse("8, #8", UNIVERSAL)
    all_32 = " ".join(str(n) for n in range(1, 33))
    assert len(teeth.parse(all_32, UNIVERSAL)) == 32
    with pytest.raises(TeethRefused, match="at most 32 teeth"):
        teeth.parse(all_32 + " A", UNIVERSAL)


def test_unknown_notation_is_refused():
    with pytest.raises(TeethRefused, match="Choose FDI or Universal"):
        teeth.parse("11", "palmer")
