"""The report built from JUnit XML: one table per section, counts, skip reasons, known-failure notes."""

from __future__ import annotations

import textwrap

from bock_conformance import build_report
from bock_conformance._report import read_junit, summarize

JUNIT = textwrap.dedent(
    """\
    <?xml version="1.0" encoding="utf-8"?>
    <testsuites><testsuite name="pytest" tests="4">
      <testcase classname="case_lifecycle" name="test_a" time="0.1">
        <properties><property name="section" value="lifecycle"/></properties>
      </testcase>
      <testcase classname="case_lifecycle" name="test_b" time="0.1">
        <properties><property name="section" value="lifecycle"/></properties>
        <failure message="AssertionError: boom">trace</failure>
      </testcase>
      <testcase classname="case_cgroups" name="test_rdma_limit" time="0.1">
        <properties><property name="section" value="cgroups"/></properties>
        <skipped type="pytest.skip" message="host: no rdma controller on this host">skip</skipped>
      </testcase>
      <testcase classname="case_process" name="test_io_priority" time="0.1">
        <properties><property name="section" value="process"/></properties>
        <failure message="AssertionError: prio">trace</failure>
      </testcase>
    </testsuite></testsuites>
    """
)


def write(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    return path


def test_read_junit_sections_and_outcomes(tmp_path):
    results = read_junit(write(tmp_path))
    assert [(r.name, r.section, r.outcome) for r in results] == [
        ("test_a", "lifecycle", "passed"),
        ("test_b", "lifecycle", "failed"),
        ("test_rdma_limit", "cgroups", "skipped"),
        ("test_io_priority", "process", "failed"),
    ]


def test_summary_counts_skips_separately(tmp_path):
    table = summarize(read_junit(write(tmp_path)))
    assert table["lifecycle"] == {"cases": 2, "passed": 1, "failed": 1, "skipped": 0, "diverged": 0}
    assert table["cgroups"] == {"cases": 1, "passed": 0, "failed": 0, "skipped": 1, "diverged": 0}


def test_markdown_report_has_a_table_per_section(tmp_path):
    text = build_report(write(tmp_path), fmt="md", runtimes=["/x/runc (runc version 1.1.5)"])
    assert "## Lifecycle and operations (runtime.md)" in text
    assert "## Cgroup resources (config-linux.md)" in text
    assert "| test_rdma_limit | skip | host: no rdma controller on this host |" in text
    assert "| **total** | 4 | 1 | 2 | 1 |" in text


def test_markdown_report_explains_known_runc_failures(tmp_path):
    text = build_report(write(tmp_path), fmt="md", runtimes=["/x/runc (runc version 1.1.5)"])
    line = next(ln for ln in text.splitlines() if ln.startswith("| test_io_priority"))
    assert "known on runc 1.1" in line and "ioPriority" in line


def test_known_notes_only_for_runc(tmp_path):
    text = build_report(write(tmp_path), fmt="md", runtimes=["/x/bock (bock version 0.1.0)"])
    assert "known on runc" not in text


def test_html_report_escapes_and_has_tables(tmp_path):
    text = build_report(write(tmp_path), fmt="html", runtimes=["<rt>"])
    assert text.count("<table>") == 4 and "&lt;rt&gt;" in text and "<h2>Summary</h2>" in text


def test_compare_report_counts_divergences(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(
        JUNIT.replace(
            '<property name="section" value="lifecycle"/></properties>\n    <failure',
            '<property name="section" value="lifecycle"/><property name="verdict_primary" value="failed"/>'
            '<property name="verdict_compare" value="passed"/><property name="divergence" value="#0: rc"/>'
            "</properties>\n    <failure",
        )
    )
    text = build_report(path, fmt="md")
    assert (
        "| section | cases | pass | fail | skip | diverged |" in text
        and "| **total** | 4 | 1 | 2 | 1 | 1 |" in text
    )
    assert "failed / passed" in text and "divergences: #0: rc" in text


def test_pytest_options_pass_through_unabbreviated():
    from bock_conformance.cli import parse

    opts, rest = parse(["--runtime", "r", "--co", "-k", "x", "-n", "2", "--junitxml=j.xml"])
    assert opts.compare is None and rest == ["--co", "-k", "x", "-n", "2", "--junitxml=j.xml"]
