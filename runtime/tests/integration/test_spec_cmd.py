"""``bock spec``: the default config.json like ``runc spec``; --rootless, --bundle, no overwrite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.root


def test_spec_in_cwd(runtime, tmp_path):
    res = runtime.raw(["spec"], cwd=str(tmp_path)).ok()
    assert res.out == ""
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["ociVersion"] == "1.3.0"
    assert doc["process"]["args"] == ["sh"] and doc["process"]["terminal"] is True
    assert doc["root"] == {"path": "rootfs", "readonly": True}
    assert doc["hostname"]
    assert {"pid", "network", "ipc", "uts", "mount"} <= {n["type"] for n in doc["linux"]["namespaces"]}


@pytest.mark.parametrize("form", [["--bundle"], ["-b"], ["-bundle"]])
def test_spec_bundle_flag(runtime, tmp_path, form):
    runtime.raw(["spec", *form, str(tmp_path)]).ok()
    assert json.loads((tmp_path / "config.json").read_text())["root"]["path"] == "rootfs"


def test_spec_refuses_to_overwrite(runtime, tmp_path):
    (tmp_path / "config.json").write_text("precious")
    res = runtime.raw(["spec", "--bundle", str(tmp_path)])
    assert res.rc == 1 and "exists" in res.err and res.out == ""
    assert (tmp_path / "config.json").read_text() == "precious"


def test_spec_rootless(runtime, tmp_path):
    runtime.raw(["spec", "--rootless", "--bundle", str(tmp_path)]).ok()
    doc = json.loads((tmp_path / "config.json").read_text())
    kinds = {n["type"] for n in doc["linux"]["namespaces"]}
    assert "user" in kinds and "network" not in kinds
    assert doc["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert doc["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]


def test_spec_validates_against_the_upstream_schema(runtime, tmp_path):
    from _support.schemas import upstream_validator

    validator = upstream_validator("config-schema.json")
    if validator is None:
        pytest.skip("jsonschema or the upstream schemas are not available")
    for flags in ([], ["--rootless"]):
        d = tmp_path / ("r" if flags else "n")
        d.mkdir()
        runtime.raw(["spec", *flags, "--bundle", str(d)]).ok()
        errors = list(validator.iter_errors(json.loads((d / "config.json").read_text())))
        assert not errors, errors[:3]


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is the oracle here")
def test_spec_matches_runc_spec_in_substance(runtime, tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    runtime.raw(["spec", "--bundle", str(ours)]).ok()
    subprocess.run(["runc", "spec", "--bundle", str(theirs)], check=True)
    a = json.loads((ours / "config.json").read_text())
    b = json.loads((theirs / "config.json").read_text())
    assert a["process"]["args"] == b["process"]["args"]
    assert a["root"] == b["root"]
    assert [m["destination"] for m in a["mounts"]] == [m["destination"] for m in b["mounts"]]
    assert {m["destination"]: m.get("options") for m in a["mounts"]} == {
        m["destination"]: m.get("options") for m in b["mounts"]
    }
    # runc >= 1.2 adds a cgroup namespace; Debian 12's runc 1.1 does not
    assert {n["type"] for n in b["linux"]["namespaces"]} <= {n["type"] for n in a["linux"]["namespaces"]}
    assert set(a["linux"]["maskedPaths"]) == set(b["linux"]["maskedPaths"])
    assert set(a["linux"]["readonlyPaths"]) == set(b["linux"]["readonlyPaths"])
    for kind in ("bounding", "effective", "permitted"):  # runc >= 1.2 dropped the ambient default
        assert a["process"]["capabilities"][kind] == b["process"]["capabilities"][kind]


def test_spec_output_runs_after_turning_the_terminal_off(runtime, tmp_path, rootfs_template):
    from _support.rootfs import copy_rootfs

    b = tmp_path / "b"
    b.mkdir()
    copy_rootfs(rootfs_template, str(b / "rootfs"))
    runtime.raw(["spec", "--bundle", str(b)]).ok()
    doc = json.loads((b / "config.json").read_text())
    doc["process"]["terminal"] = False
    doc["process"]["args"] = ["sh", "-c", "hostname; cat /proc/1/cmdline; echo"]
    (b / "config.json").write_text(json.dumps(doc))
    res = runtime("run", "--bundle", str(b), runtime.new_id(), stdin=subprocess.DEVNULL).ok()
    lines = res.out.splitlines()
    assert lines[0] == doc["hostname"]
    assert lines[1].startswith("sh")
