"""Extract the config.json files that real callers generated into corpus documents.

The contract recordings in ``../shared/docs/contracts/*-calls.txt`` hold, per caller,
the first generated ``config.json`` in full (section 7) and every other one as a
normal ``diff`` against it (section 8). This script rebuilds each of them (``patch``
applies the diffs) and writes ``corpus/config/valid/<caller>-<n>.json``. It is run by
hand when the recordings change; its output is committed.

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
CALLERS = {
    "containerd-1.6": "containerd-1.6-runc-calls.txt",
    "podman-4.3": "podman-4.3-runtime-calls.txt",
    "buildah-1.28": "buildah-1.28-runtime-calls.txt",
}


def default_contracts_dir() -> pathlib.Path:
    env = os.environ.get("BOCK_SHARED_DIR")
    if env:
        return pathlib.Path(env) / "docs" / "contracts"
    return HERE.parents[2] / "shared" / "docs" / "contracts"


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
        parts = sections((contracts / filename).read_text())
        base = first_config(parts["7"])
        docs = [base]
        for name, diff in diffs(parts.get("8", "")):
            rebuilt = apply(base, diff)
            try:
                json.loads(rebuilt or "")
            except ValueError:
                print(f"{caller}: {name}: diff does not rebuild a JSON document, skipped", file=sys.stderr)
                continue
            docs.append(rebuilt)
        for n, text in enumerate(docs, 1):
            path = OUT / f"{caller}-{n}.json"
            path.write_text(json.dumps(json.loads(text), indent=2) + "\n")
            print(path.relative_to(HERE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
