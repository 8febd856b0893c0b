"""The one exception the web side has to know about."""


class MeshRejected(Exception):
    """The file is not a usable STL/PLY triangle mesh.

    `str(exc)` is one specific, user-facing sentence (it names what is wrong and, where it helps, what
    to do). Raised before any mesh library sees the file, and by `repair()` when nothing usable is
    left. Retrying cannot help: the job must not be retried."""
