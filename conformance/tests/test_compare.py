"""Differential mode: a fake runtime that wraps the reference one and misbehaves on purpose."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.root

FAKE = """#!{python}
# Wraps {real}; lies about `kill` failures (exit 0) and drops annotations from `state`.
import json, subprocess, sys
args = sys.argv[1:]
cmd = [a for a in args if not a.startswith("-")]
proc = subprocess.run(["{real}", *args], capture_output=True, text=True)
out = proc.stdout
if "state" in args and proc.returncode == 0:
    doc = json.loads(out)
    doc.pop("annotations", None)
    out = json.dumps(doc)
sys.stdout.write(out)
sys.stderr.write(proc.stderr)
sys.exit(0 if "kill" in args else proc.returncode)
"""


def fake_runtime(tmp_path, real):
    path = tmp_path / "fake-runtime"
    path.write_text(FAKE.format(python=sys.executable, real=real))
    path.chmod(0o755)
    return path


def divergences(junit):
    found = {}
    for case in ET.parse(junit).iter("testcase"):
        found[case.get("name")] = [
            p.get("value") for p in case.iter("property") if p.get("name") == "divergence"
        ]
    return found


def test_compare_reports_divergences(tmp_path, reference_runtime, run_tool):
    fake = fake_runtime(tmp_path, reference_runtime)
    junit = tmp_path / "j.xml"
    pick = "test_kill_stopped_container_fails or test_annotations_kept_in_state or test_umask"
    res = run_tool("--runtime", reference_runtime, "--compare", str(fake), "--junit", str(junit), "-k", pick)
    assert res.returncode == 1, res.stdout[-3000:]
    div = divergences(junit)
    assert any("kill <ID0> KILL" in d for d in div["test_kill_stopped_container_fails"]), div
    assert any("annotations" in d for d in div["test_annotations_kept_in_state"]), div
    assert div["test_umask[63-0077]"] == [], div


def test_compare_same_runtime_has_no_divergence(tmp_path, reference_runtime, run_tool):
    junit, report = tmp_path / "j.xml", tmp_path / "r.md"
    pick = "case_lifecycle and (state or kill)"
    res = run_tool(
        "--runtime",
        reference_runtime,
        "--compare",
        reference_runtime,
        "--junit",
        str(junit),
        "--report",
        str(report),
        "-n",
        "2",
        "-k",
        pick,
    )
    assert res.returncode == 0, res.stdout[-3000:]
    div = divergences(junit)
    assert len(div) > 10 and not any(div.values()), div
    assert "verdicts (1 / 2)" in report.read_text()
