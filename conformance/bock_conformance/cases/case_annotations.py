"""config.md "annotations": kept in the state document."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.section("annotations")

ANN = {"org.example.key": "value", "io.kubernetes.cri.container-type": "container"}


def test_annotations_kept_in_state(kit):
    cfg = kit.config("sleep 300")
    cfg["annotations"] = dict(ANN)
    ctr = kit.create(cfg)
    assert ctr.state().get("annotations") == ANN


def test_annotations_kept_in_running_state(kit):
    def ann(cfg):
        cfg["annotations"] = dict(ANN)

    ctr = kit.started("sleep 300", ann)
    assert ctr.state().get("annotations") == ANN


def test_annotations_absent_or_empty_without_config(kit):
    ctr = kit.create(kit.config("sleep 300"))
    assert ctr.state().get("annotations") in (None, {})


def test_annotation_values_with_unicode_and_newlines(kit):
    cfg = kit.config("sleep 300")
    cfg["annotations"] = {"org.example.text": 'zwölf\nlines "quoted"'}
    ctr = kit.create(cfg)
    assert ctr.state()["annotations"]["org.example.text"] == 'zwölf\nlines "quoted"'
