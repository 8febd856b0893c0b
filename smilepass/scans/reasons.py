"""Why a repair failed, in sentences the worker stores in English (it has no reader) and the scan panel
shows in the reader's language (scans.text.stored_reason knows these templates). Flask-free."""
from ..mesh.errors import Sentence

# A repair that ran out of time, with the attempt it was on (so the user sees both).
TIMEOUT_MINUTES = Sentence("The repair took longer than %(minutes)s minutes and was stopped (attempt %(attempt)s). "
                           "A timeout is not retried: export the scan with fewer triangles, or ask an admin to "
                           "raise the limit.")
TIMEOUT_SECONDS = Sentence("The repair took longer than %(seconds)s seconds and was stopped (attempt %(attempt)s). "
                           "A timeout is not retried: export the scan with fewer triangles, or ask an admin to "
                           "raise the limit.")


def timeout_reason(timeout: int, attempt: int) -> str:
    """Whole minutes for the usual limits (15 minutes), seconds for short ones."""
    attempt = max(attempt, 1)  # a timeout while the horse was still starting, before it counted the attempt
    if timeout >= 120 and timeout % 60 == 0:
        return str(Sentence(TIMEOUT_MINUTES.template, minutes=timeout // 60, attempt=attempt))
    return str(Sentence(TIMEOUT_SECONDS.template, seconds=timeout, attempt=attempt))
