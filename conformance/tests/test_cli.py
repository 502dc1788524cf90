"""bock-conformance end to end against the reference runtime: JUnit, reports, option pass-through, errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.root

PICK = "test_state_id_matches or test_kill_stopped_container_fails or test_rdma_limit or test_umask"


def test_junit_and_markdown_report(tmp_path, reference_runtime, run_tool):
    junit, report = tmp_path / "j.xml", tmp_path / "r.md"
    res = run_tool("--runtime", reference_runtime, "--junit", str(junit), "--report", str(report), "-k", PICK)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    cases = list(ET.parse(junit).iter("testcase"))
    assert len(cases) == 7  # 1 + 1 + 1 + 3 umask parametrizations + test_umask_applies_to_new_files
    sections = {p.get("value") for c in cases for p in c.iter("property") if p.get("name") == "section"}
    assert sections == {"lifecycle", "cgroups", "process"}
    text = report.read_text()
    assert "## Summary" in text and "| test_rdma_limit | skip | host: no rdma controller" in text


def test_html_report_and_xdist(tmp_path, reference_runtime, run_tool):
    report = tmp_path / "r.html"
    res = run_tool("--runtime", reference_runtime, "--report", str(report), "-n", "2", "-k", PICK)
    assert res.returncode == 0, res.stdout[-2000:]
    assert "<h2>Summary</h2>" in report.read_text()


def test_failing_case_gives_nonzero_exit(tmp_path, reference_runtime, run_tool):
    res = run_tool("--runtime", reference_runtime, "-k", "test_io_priority")
    assert res.returncode == 1 and "1 failed" in res.stdout


def test_bad_report_suffix_is_a_clear_error(tmp_path, reference_runtime, run_tool):
    res = run_tool("--runtime", reference_runtime, "--report", str(tmp_path / "r.txt"))
    assert res.returncode == 2 and "must end in .md or .html" in res.stderr


def test_missing_runtime_is_a_clear_error(tmp_path, run_tool):
    res = run_tool("--runtime", "/no/such/runtime", "-k", "x")
    assert res.returncode == 2 and "runtime binary not found" in res.stderr


LACKING = """#!/bin/sh
# Wraps {real} but has no `events` subcommand.
for a in "$@"; do
  if [ "$a" = events ]; then echo "No help topic for 'events'" >&2; exit 3; fi
done
exec {real} "$@"
"""


def test_missing_subcommand_is_an_honest_skip(tmp_path, reference_runtime, run_tool):
    fake = tmp_path / "no-events-runtime"
    fake.write_text(LACKING.format(real=reference_runtime))
    fake.chmod(0o755)
    junit = tmp_path / "j.xml"
    res = run_tool("--runtime", str(fake), "--junit", str(junit), "-k", "test_events")
    assert res.returncode == 0, res.stdout[-2000:]
    skips = [c.find("skipped").get("message") for c in ET.parse(junit).iter("testcase")]
    assert len(skips) == 2 and all("runtime lacks the `events` subcommand" in s for s in skips), skips
