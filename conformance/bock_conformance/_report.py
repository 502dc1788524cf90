"""Build the human report (one table per spec section) from pytest's JUnit XML.

The JUnit file is the single source: each ``<testcase>`` carries a ``section`` property (set by the
plugin), and in differential mode the verdicts of both runtimes and the divergences.
"""

from __future__ import annotations

import datetime
import html
import os
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from bock_conformance import _host
from bock_conformance._known import explain


@dataclass
class CaseResult:
    name: str
    module: str
    section: str
    outcome: str  # passed | failed | skipped
    detail: str = ""
    divergences: list[str] = field(default_factory=list)
    verdicts: tuple[str, str] | None = None


def read_junit(path: str | Path) -> list[CaseResult]:
    tree = ET.parse(path)
    results: list[CaseResult] = []
    for tc in tree.iter("testcase"):
        props = {}
        divergences = []
        for prop in tc.iter("property"):
            if prop.get("name") == "divergence":
                divergences.append(prop.get("value", ""))
            else:
                props[prop.get("name")] = prop.get("value", "")
        outcome, detail = "passed", ""
        for tag in ("failure", "error"):
            el = tc.find(tag)
            if el is not None:
                outcome, detail = "failed", el.get("message", "") or (el.text or "")
        el = tc.find("skipped")
        if el is not None:
            outcome, detail = "skipped", _skip_reason(el.get("message", ""))
        verdicts = None
        if "verdict_primary" in props:
            verdicts = (props["verdict_primary"], props.get("verdict_compare", ""))
        results.append(
            CaseResult(
                name=tc.get("name", "?"),
                module=tc.get("classname", ""),
                section=props.get("section", "other"),
                outcome=outcome,
                detail=detail,
                divergences=divergences,
                verdicts=verdicts,
            )
        )
    return results


def _skip_reason(message: str) -> str:
    return message.removeprefix("Skipped: ").strip()


def runtime_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    first = out.strip().splitlines()[0] if out.strip() else "version unknown"
    return f"{path} ({first})"


def summarize(results: list[CaseResult]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for r in results:
        row = table.setdefault(r.section, {"cases": 0, "passed": 0, "failed": 0, "skipped": 0, "diverged": 0})
        row["cases"] += 1
        row[r.outcome] += 1
        row["diverged"] += bool(r.divergences)
    return table


def _order(sections: list[str]) -> list[str]:
    from bock_conformance._plugin import SECTIONS

    known = [s for s in SECTIONS if s in sections]
    return known + sorted(s for s in sections if s not in SECTIONS)


def _title(section: str) -> str:
    from bock_conformance._plugin import SECTIONS

    return SECTIONS.get(section, section)


def _note(r: CaseResult, runtimes: list[str]) -> str:
    if r.outcome == "skipped":
        return r.detail
    text = ""
    if r.outcome == "failed":
        why = explain(r.name, runtimes)
        first = r.detail.strip().splitlines()[0] if r.detail.strip() else ""
        text = f"{why} — {first[:200]}" if why else first[:240]
    if r.divergences:
        text = (text + " " if text else "") + "divergences: " + "; ".join(r.divergences)[:600]
    return text


def build_report(junit: str | Path, fmt: str = "md", runtimes: list[str] | None = None) -> str:
    """Render the report for the JUnit file *junit* as Markdown (``md``) or ``html``."""
    results = read_junit(junit)
    runtimes = runtimes or []
    table = summarize(results)
    sections = _order(list(table))
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"Date: {now}",
        f"Host: Linux {os.uname().release}, cgroup layout {_host.layout()}",
        *[f"Runtime{' ' + str(n + 1) if len(runtimes) > 1 else ''}: {rt}" for n, rt in enumerate(runtimes)],
    ]
    compare = any(r.verdicts for r in results)
    keys = ("cases", "passed", "failed", "skipped", *(("diverged",) if compare else ()))
    totals = {k: sum(row[k] for row in table.values()) for k in keys}
    summary_rows = [[_title(s), *(str(table[s][k]) for k in keys)] for s in sections]
    summary_rows.append(["**total**", *(str(totals[k]) for k in keys)])
    cols = ["section", "cases", "pass", "fail", "skip", *(["diverged"] if compare else [])]
    blocks: list[tuple[str, list[str], list[list[str]]]] = [("Summary", cols, summary_rows)]
    for s in sections:
        rows = []
        for r in sorted((r for r in results if r.section == s), key=lambda r: (r.module, r.name)):
            row = [r.name, {"passed": "pass", "failed": "FAIL", "skipped": "skip"}[r.outcome]]
            if compare:
                row.append(" / ".join(r.verdicts) if r.verdicts else "")
            row.append(_note(r, runtimes))
            rows.append(row)
        cols = ["case", "result", *(["verdicts (1 / 2)"] if compare else []), "why / detail"]
        blocks.append((_title(s), cols, rows))
    if fmt == "html":
        return _html(header, blocks)
    return _markdown(header, blocks)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(header: list[str], blocks: list[tuple[str, list[str], list[list[str]]]]) -> str:
    lines = ["# bock-conformance report", "", *[f"- {h}" for h in header], ""]
    for title, cols, rows in blocks:
        lines += [f"## {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def _html(header: list[str], blocks: list[tuple[str, list[str], list[list[str]]]]) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>bock-conformance report</title>",
        "<style>td,th{border:1px solid #ccc;padding:2px 6px}table{border-collapse:collapse}</style>",
        "</head><body><h1>bock-conformance report</h1><ul>",
        *[f"<li>{esc(h)}</li>" for h in header],
        "</ul>",
    ]
    for title, cols, rows in blocks:
        parts.append(f"<h2>{esc(title.replace('**', ''))}</h2><table><tr>")
        parts += [f"<th>{esc(c)}</th>" for c in cols]
        parts.append("</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{esc(c.replace('**', ''))}</td>" for c in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
