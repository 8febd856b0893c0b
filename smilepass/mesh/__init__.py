"""The scan pipeline: structural checks, repair and previews for intraoral scans (STL/PLY).

Free of Flask: the web app, the RQ job and the command line (`python -m smilepass.mesh`) all call
the same functions. Open3D is not imported here at all (the previews are drawn in numpy, render.py):
a forked RQ work horse that inherited an initialised OpenMP runtime can hang."""

from .errors import MeshRejected
from .pipeline import RepairOptions, RepairResult, repair
from .readers import FileInfo, inspect_file

__all__ = ["MeshRejected", "FileInfo", "inspect_file", "RepairOptions", "RepairResult", "repair"]
