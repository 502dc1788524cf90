"""``bock list``: every container under --root, as a table or JSON."""

from __future__ import annotations

from bock._state import Container, list_ids
from bock.errors import BockError


def states(root: str) -> list[dict]:
    out = []
    for cid in list_ids(root):
        try:
            out.append(Container.load(root, cid).oci_state())
        except BockError:
            continue
    return out


def table(rows: list[dict]) -> str:
    """runc's tabwriter layout: min width 12, padding 3."""
    header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    cells = [header] + [
        [r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r.get("owner", "")] for r in rows
    ]
    widths = [max(12, max(len(row[i]) for row in cells) + 3) for i in range(len(header) - 1)]
    lines = []
    for row in cells:
        lines.append("".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + row[-1])
    return "\n".join(lines) + "\n"
