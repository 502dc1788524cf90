"""Extract the config.json files that real callers generated into corpus documents.

The contract recordings in ``../shared/docs/contracts/*-calls.txt`` hold, per caller,
the first generated ``config.json`` in full (section 7), every other one as a normal
``diff`` against it (section 8), and the ``exec --process`` files (section 9). This script
rebuilds each config (``patch`` applies the diffs) and writes
``corpus/config/valid/<caller>-<n>.json`` and ``corpus/process/valid/<caller>-exec-<n>.json``.
It is run by hand when the recordings change; its output is committed.

    /usr/bin/python3 spec-schemas/tests/extract_contract_configs.py [CONTRACTS_DIR]
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "corpus" / "config" / "valid"
OUT_PROCESS = HERE / "corpus" / "process" / "valid"
CALLERS = {
    "containerd-1.6": "containerd-1.6-runc-calls.txt",
    "podman-4.3": "podman-4.3-runtime-calls.txt",
    "buildah-1.28": "buildah-1.28-runtime-calls.txt",
}


def default_contracts_dir() -> pathlib.Path:
    env = os.environ.get("BOCK_SHARED_DIR")
    if env:
        return pathlib.Path(env) / "docs" / "contracts"
    for parent in HERE.parents[2:]:  # beside the repository (CI) or above it (a worktree)
        candidate = parent / "shared" / "docs" / "contracts"
        if candidate.is_dir():
            return candidate
    raise SystemExit("contract recordings not found: pass their directory or set BOCK_SHARED_DIR")


def sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            current = line.split(".", 1)[0][3:].strip()
            out[current] = ""
            continue
        if current is not None:
            out[current] += line
    return out


def first_config(section7: str) -> str:
    start = section7.index("{")
    end = section7.rindex("}") + 1
    # The section 8 diffs were taken between sorted, 2-space-indented renderings.
    return json.dumps(json.loads(section7[start:end]), indent=2, sort_keys=True) + "\n"


def diffs(section8: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    name = None
    body: list[str] = []
    for line in section8.splitlines(keepends=True):
        if line.startswith("--- ") and line.rstrip().endswith(".json"):
            if name is not None:
                out.append((name, "".join(body)))
            name, body = line[4:].strip(), []
        elif name is not None and line.strip():
            body.append(line)
    if name is not None:
        out.append((name, "".join(body)))
    return out


def process_files(section9: str) -> list[object]:
    return [json.loads(line) for line in section9.splitlines() if line.startswith("{")]


def elided(text: str, longer_than: int = 20) -> str:
    """The base as the recorder diffed it: long seccomp name lists shown as "<N names>"."""
    doc = json.loads(text)
    for rule in doc.get("linux", {}).get("seccomp", {}).get("syscalls", []):
        if len(rule.get("names", [])) > longer_than:
            rule["names"] = [f"<{len(rule['names'])} names>"]
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def as_json(text: str | None) -> str | None:
    try:
        json.loads(text or "")
    except ValueError:
        return None
    return text


def apply(base: str, diff: str) -> str | None:
    with tempfile.TemporaryDirectory() as tmp:
        target = pathlib.Path(tmp, "config.json")
        target.write_text(base)
        proc = subprocess.run(
            ["patch", "--normal", "--quiet", "--force", str(target)],
            input=diff,
            text=True,
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            return None
        return target.read_text()


def main(argv: list[str]) -> int:
    contracts = pathlib.Path(argv[1]) if len(argv) > 1 else default_contracts_dir()
    OUT.mkdir(parents=True, exist_ok=True)
    for caller, filename in CALLERS.items():
        for stale in [*OUT.glob(f"{caller}-*.json"), *OUT_PROCESS.glob(f"{caller}-exec-*.json")]:
            stale.unlink()
        parts = sections((contracts / filename).read_text())
        base = first_config(parts["7"])
        docs = [base]
        for name, diff in diffs(parts.get("8", "")):
            # the full base when the diff applies to it; else the elided one (placeholders stay)
            rebuilt = as_json(apply(base, diff)) or as_json(apply(elided(base), diff))
            if rebuilt is None:
                print(f"{caller}: {name}: diff does not rebuild a JSON document, skipped", file=sys.stderr)
                continue
            docs.append(rebuilt)
        for n, text in enumerate(docs, 1):
            path = OUT / f"{caller}-{n}.json"
            path.write_text(json.dumps(json.loads(text), indent=2) + "\n")
            print(path.relative_to(HERE))
        OUT_PROCESS.mkdir(parents=True, exist_ok=True)
        for n, process in enumerate(process_files(parts.get("9", "")), 1):
            path = OUT_PROCESS / f"{caller}-exec-{n}.json"
            path.write_text(json.dumps(process, indent=2) + "\n")
            print(path.relative_to(HERE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
