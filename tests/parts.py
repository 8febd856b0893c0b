"""Real parts a test needs (Chromium, htmx, Redis, redis-server, pg_dump/pg_restore, the shared meshes,
Playwright) and what happens when one is missing.

On a developer's machine a test whose part is missing is skipped with a one-line reason. Under CI (the
`CI` environment variable set, as every CI service does) it fails instead: a CI run that silently skipped
the browser or the restore tests would report green without having checked them."""
import importlib
import os
from types import ModuleType

import pytest

# Values of CI that mean "not CI" (a developer may export CI=false to be explicit).
NOT_CI = {"", "0", "false", "no"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in NOT_CI


def part_missing(reason: str):
    """Stop the current test: skip locally, fail under CI. `reason` is one line saying what is missing
    and how to get it."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: a test whose part is missing fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def require(missing_reason: str | None) -> None:
    """`part_missing(missing_reason)` when there is a reason, else nothing."""
    if missing_reason:
        part_missing(missing_reason)


def import_part(module_name: str, install_hint: str) -> ModuleType:
    """Import a module a whole test module needs, at collection time: skipped locally when it is not
    installed, an error (the module fails to collect) under CI."""
    if in_ci():
        return importlib.import_module(module_name)
    return pytest.importorskip(module_name, reason=f"{module_name} is not installed ({install_hint})")
