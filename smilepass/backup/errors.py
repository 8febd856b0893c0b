"""The one exception a backup or restore raises, and how a tool's error output becomes its message."""


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is one line meant for the operator."""


def one_line(text: str) -> str:
    """The first line of a tool's error output: pg_dump/pg_restore put the error there."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""
