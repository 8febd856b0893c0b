"""A repair's output files appear together and whole, or not at all.

Each file is written under a hidden temporary name beside its final one (same directory, so the rename
is atomic) and all of them are renamed into place only when the block ends without an error. On any
error, a job timeout included, the temporary files are removed and no final file is touched: a reader
never sees a half-written mesh or preview, nor a new preview beside an old mesh.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


class AtomicOutputs:
    """Use as `with AtomicOutputs() as outputs:` and write each file with `with outputs.open(path) as f:`."""

    def __init__(self):
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final)

    @contextmanager
    def open(self, final):
        """A binary file to write `final`'s content into, under a temporary name until the block ends."""
        final = Path(final)
        # os.urandom, not secrets.token_hex (the same bytes): secrets imports random and hashlib, a
        # noticeable part of a command-line repair's start-up.
        temporary = final.with_name(f".{final.name}.{os.urandom(4).hex()}.tmp")
        self._pending.append((temporary, final))  # before opening: a failed open is cleaned up as well
        with open(temporary, "wb") as f:
            yield f

    def commit(self) -> None:
        for temporary, final in self._pending:
            os.replace(temporary, final)
        self._pending = []

    def discard(self) -> None:
        for temporary, _ in self._pending:
            temporary.unlink(missing_ok=True)
        self._pending = []

    def __enter__(self) -> AtomicOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()
