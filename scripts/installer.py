"""Text work for scripts/install.sh, kept out of bash: filling in templates and merging settings files.
Standard library only: it runs with the system's python3, before the app's venv exists.

    python3 scripts/installer.py render TEMPLATE NAME=VALUE ...   prints TEMPLATE with each @NAME@ replaced
    python3 scripts/installer.py merge-env EXISTING NEW           prints EXISTING plus the blocks of NEW
                                                                  whose variable EXISTING does not name
    python3 scripts/installer.py get-env FILE NAME                prints NAME's value in FILE (exit 1: unset)

A settings file is systemd's EnvironmentFile format: KEY=value lines, # comments. A block is a run of lines
between blank lines: comments and the variables they describe, set or commented out (#KEY=default)."""
import re
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
# `KEY=value` or a commented-out `#KEY=value` / `# KEY=value`.
VARIABLE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
ACTIVE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)


def render(template: str, values: dict[str, str]) -> str:
    def fill(match):
        if match.group(1) not in values:
            raise SystemExit(f"installer.py: no value for @{match.group(1)}@")
        return values[match.group(1)]

    return PLACEHOLDER.sub(fill, template)


def named(text: str) -> set[str]:
    """Every variable a settings file mentions, set or commented out: an admin who commented one out
    meant it, and it is not added back."""
    return set(VARIABLE.findall(text))


def merge_env(existing: str, new: str) -> str:
    """EXISTING, plus each block of NEW that names a variable EXISTING does not: with its comments, without
    the lines of variables EXISTING already has (set or commented out)."""
    present = named(existing)
    missing = []
    for block in re.split(r"\n\s*\n", new.strip("\n")):
        lines = block.splitlines()
        names = [VARIABLE.match(line) for line in lines]
        if not any(m and m.group(1) not in present for m in names):
            continue
        kept = [line for line, m in zip(lines, names, strict=True) if not m or m.group(1) not in present]
        missing.append("\n".join(kept))
    if not missing:
        return existing
    return existing.rstrip("\n") + "\n\n" + "\n\n".join(missing) + "\n"


def get_env(text: str, name: str) -> str | None:
    """The value systemd would read: the last active assignment, without surrounding quotes."""
    value = None
    for key, raw in ACTIVE.findall(text):
        if key == name:
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
                raw = raw[1:-1]
            value = raw
    return value


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "render":
        values = dict(arg.split("=", 1) for arg in args[1:])
        sys.stdout.write(render(Path(args[0]).read_text(), values))
    elif command == "merge-env":
        sys.stdout.write(merge_env(Path(args[0]).read_text(), Path(args[1]).read_text()))
    elif command == "get-env":
        value = get_env(Path(args[0]).read_text(), args[1])
        if value is None:
            return 1
        print(value)
    else:
        raise SystemExit(f"installer.py: unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
