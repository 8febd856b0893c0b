"""What a backup and a restore tell the operator: the reports the commands print, line by line."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class BackupReport:
    path: Path
    manifest: dict

    def lines(self) -> list[str]:
        m = self.manifest
        files = m["files"]
        size = sum(f["size"] for f in files) + m["database"]["size"]
        unreferenced = sum(1 for f in files if not f["referenced"])
        lines = [f"backup written to {self.path} ({human_size(size)} before compression)",
                 f"database: {m['database']['kind']}, {sum(m['row_counts'].values())} rows in "
                 f"{len(m['row_counts'])} tables, migrations up to {(m['migrations'] or ['none'])[-1]}",
                 f"files: {len(files)} ({unreferenced} not named by any row)"]
        for path in m["missing_files"]:
            lines.append(f"warning: {path} is named in the database but was gone from the upload folder")
        for item in m["hash_mismatches"]:
            lines.append(f"warning: {item['path']} no longer matches the SHA-256 recorded at upload")
        return lines


@dataclass
class RestoreReport:
    manifest: dict
    files_restored: int
    migrations_applied: list[str]
    scans_requeued: int
    counts: dict[str, int]
    files_left_alone: int = 0

    def lines(self) -> list[str]:
        m = self.manifest
        lines = [f"restored the {m['database']['kind']} backup of {m['created_at']}: "
                 f"{sum(self.counts.get(t, 0) for t in m['row_counts'])} rows in {len(m['row_counts'])} tables "
                 f"(as in the manifest), {self.files_restored} files (hashes checked)",
                 "migrations applied: " + (", ".join(self.migrations_applied) or "none, the backup was up to date")]
        if self.scans_requeued:
            lines.append(f"{self.scans_requeued} scans that were queued or being repaired wait for a worker again")
        if self.files_left_alone:
            lines.append(f"{self.files_left_alone} files already in the upload folder that the backup does not "
                         f"hold were left alone")
        return lines


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"
