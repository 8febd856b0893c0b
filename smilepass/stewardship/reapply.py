"""After a restore: erase again every patient the erasure ledger names whom an older backup brought back."""
from pathlib import Path

from ..db import database
from . import ledger
from .erase import erase_patient


def reapply(config) -> ledger.Reapplied:
    """Erase again, in ledger order, the cases each entry erased that a restore brought back. Runs
    on the app's database connection; call it after the restore's migrations."""
    path = Path(config["ERASURE_LEDGER"])
    entries, unreadable = ledger.read(path)
    outcome = ledger.Reapplied(path, path.is_file(), len(entries), unreadable)
    for entry in entries:
        with database.connection_context():
            cases = ledger.cases_back(entry)
            if not cases:
                continue
            erase_patient(cases, None, config, reapplying=True)
        outcome.erasures += 1
        outcome.case_ids += [case.id for case in cases]
    return outcome
