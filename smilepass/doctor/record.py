"""What a check says: a name, OK / WARN / FAIL, and one line why."""
from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    OK = "OK"
    WARN = "WARN"  # works, but something an admin should look at (mail in the outbox, http links, old backup)
    FAIL = "FAIL"  # something the portal needs is not there: `doctor` exits with status 1


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def worst(statuses) -> Status:
    statuses = set(statuses)
    for status in (Status.FAIL, Status.WARN):
        if status in statuses:
            return status
    return Status.OK


def first_line(exc: BaseException) -> str:
    """An exception as one short line for the report."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}"[:300] if text else type(exc).__name__
