"""Resolving a path inside a root (bock._pathsafe): ``..``, symlinks, loops never leave it."""

from __future__ import annotations

import os

import pytest
from bock._pathsafe import PathEscape, is_within, mkdir_all_in_root, open_in_root, resolve_in_root


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "a" / "b").mkdir(parents=True)
    (r / "etc").mkdir()
    (r / "etc" / "passwd").write_text("x")
    return str(r)


@pytest.mark.parametrize(
    ("unsafe", "rel"),
    [
        ("/", ""),
        ("", ""),
        ("/a/b", "a/b"),
        ("a/b", "a/b"),
        ("/a/./b/", "a/b"),
        ("//a//b", "a/b"),
        ("/a/b/..", "a"),
        ("/..", ""),
        ("/../../..", ""),
        ("/a/../../../etc", "etc"),
        ("../../etc/passwd", "etc/passwd"),
        ("/missing/x/..", "missing"),
    ],
)
def test_dotdot_and_plain(root, unsafe, rel):
    assert resolve_in_root(root, unsafe) == os.path.join(root, rel).rstrip("/")


def test_absolute_symlink_is_rerooted(root, tmp_path):
    os.symlink("/etc", os.path.join(root, "a", "abs"))
    assert resolve_in_root(root, "/a/abs/passwd") == os.path.join(root, "etc", "passwd")


def test_absolute_symlink_to_host_dir_stays_inside(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), os.path.join(root, "evil"))
    got = resolve_in_root(root, "/evil/file")
    assert got == os.path.join(root, str(outside).lstrip("/"), "file")
    assert got.startswith(root + "/")


def test_relative_symlink(root):
    os.symlink("../etc", os.path.join(root, "a", "rel"))
    assert resolve_in_root(root, "/a/rel/passwd") == os.path.join(root, "etc", "passwd")
    os.symlink("../b/../etc", os.path.join(root, "a", "b", "rel2"))
    assert resolve_in_root(root, "/a/b/rel2") == os.path.join(root, "a", "etc")
    os.symlink("b", os.path.join(root, "a", "tob"))
    assert resolve_in_root(root, "/a/tob") == os.path.join(root, "a", "b")


def test_relative_symlink_climbing_out_is_clamped(root):
    os.symlink("../../../../../../etc", os.path.join(root, "a", "b", "up"))
    assert resolve_in_root(root, "/a/b/up/passwd") == os.path.join(root, "etc", "passwd")


def test_chained_symlinks(root):
    os.symlink("/a", os.path.join(root, "l1"))
    os.symlink("/l1/b", os.path.join(root, "l2"))
    assert resolve_in_root(root, "/l2") == os.path.join(root, "a", "b")


def test_dangling_symlink_resolves_to_its_target_inside(root):
    os.symlink("/nowhere/deep", os.path.join(root, "dangle"))
    assert resolve_in_root(root, "/dangle") == os.path.join(root, "nowhere", "deep")


def test_symlink_loop_raises(root):
    os.symlink("loop2", os.path.join(root, "loop1"))
    os.symlink("loop1", os.path.join(root, "loop2"))
    with pytest.raises(PathEscape, match="too many levels of symbolic links"):
        resolve_in_root(root, "/loop1/x")


def test_self_loop_raises(root):
    os.symlink("/self", os.path.join(root, "self"))
    with pytest.raises(PathEscape):
        resolve_in_root(root, "/self")


def test_root_with_trailing_slash_and_relative(root):
    assert resolve_in_root(root + "/", "/a") == os.path.join(root, "a")


def test_is_within():
    assert is_within("/r", "/r") and is_within("/r", "/r/x") and is_within("/", "/anything")
    assert not is_within("/r", "/rx") and not is_within("/r", "/")


def test_open_in_root_refuses_a_path_outside(root, tmp_path):
    fd = open_in_root(root, os.path.join(root, "a"))
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == os.path.join(root, "a")
    finally:
        os.close(fd)
    with pytest.raises(PathEscape, match="escapes the container root"):
        open_in_root(root, str(tmp_path))


def test_open_in_root_does_not_follow_a_final_symlink(root, tmp_path):
    os.symlink(str(tmp_path), os.path.join(root, "link"))
    fd = open_in_root(root, os.path.join(root, "link"))  # O_NOFOLLOW: the link itself
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == os.path.join(root, "link")
    finally:
        os.close(fd)


def test_mkdir_all_in_root_creates_inside_only(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), os.path.join(root, "evil"))
    got = mkdir_all_in_root(root, "/evil/new/dir")
    assert got.startswith(root + "/") and os.path.isdir(got)
    assert os.listdir(outside) == []


def test_mkdir_all_in_root_dotdot(root, tmp_path):
    got = mkdir_all_in_root(root, "/../../x/../y")
    assert got == os.path.join(root, "y") and os.path.isdir(got)
    assert not (tmp_path / "y").exists()


def test_mkdir_all_in_root_over_a_file(root):
    with pytest.raises(NotADirectoryError):
        mkdir_all_in_root(root, "/etc/passwd/sub")
