"""The command line's parser: building only the sub-parser of the command named gives the same result
as building them all, and anything unclear falls back to the whole parser."""

from __future__ import annotations

import pytest
from bock_image import cli

SAMPLES = {
    "pull": ["pull", "127.0.0.1:5000/a/b:1", "--name", "x:1", "--unpack"],
    "push": ["push", "x:1", "127.0.0.1:5000/a/b:1", "--chunk-size", "1024", "--mount-from", "c/d"],
    "copy": ["copy", "docker://127.0.0.1:5000/a/b:1", "127.0.0.1:5001/c:2", "--all"],
    "list": ["list"],
    "ls": ["ls"],
    "inspect": ["inspect", "x:1", "--remote", "--raw"],
    "tags": ["tags", "127.0.0.1:5000/a/b"],
    "tag": ["tag", "x:1", "y:2"],
    "rm": ["rm", "x:1", "y:2"],
    "gc": ["gc"],
    "verify": ["verify"],
    "import": ["import", "rootfs.tar", "x:1", "--cmd", '["sh", "-c", "id"]', "--env", "A=1"],
    "export": ["export", "x:1", "out.tar"],
    "save": ["save", "x:1", "-o", "a.tar", "--archive-format", "docker-archive"],
    "load": ["load", "a.tar", "x:1"],
    "bundle": ["bundle", "x:1", "dir", "--rootfs-mode", "copy", "--terminal"],
    "unbundle": ["unbundle", "dir"],
    "login": ["login", "127.0.0.1:5000", "-u", "me", "--password-stdin"],
    "logout": ["logout", "127.0.0.1:5000"],
}
GLOBALS = [
    "--root",
    "/tmp/store",
    "-q",
    "--format=json",
    "--tls-verify",
    "false",
    "--cert-dir",
    "/c",
    "--jobs",
    "3",
]


def test_every_command_has_a_sample():
    names = set(cli._COMMANDS) | {a for _, aliases, _ in cli._COMMANDS.values() for a in aliases}
    assert names == set(SAMPLES)


@pytest.mark.parametrize("word", sorted(SAMPLES))
def test_one_sub_parser_parses_as_all_of_them(word):
    argv = GLOBALS + SAMPLES[word]
    assert cli._command_in(argv) == word
    assert vars(cli._parser(word).parse_args(argv)) == vars(cli._parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["--ro", "/tmp/push", "push", "x"],  # an abbreviation: its value could look like a command
        ["pusx", "x"],
        ["-h", "push"],
        ["--root"],
        [],
        ["--root", "push"],  # "push" is the store here, and no command follows
    ],
)
def test_unclear_command_lines_get_the_whole_parser(argv):
    assert cli._command_in(argv) is None


def test_bundle_takes_options_before_the_command_after_dashes(monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "run", lambda args: seen.update(vars(args)) or 0)
    assert cli.main(["bundle", "x:1", "dir", "--rootfs-mode", "copy", "--", "sh", "-c", "true"]) == 0
    assert seen["rootfs_mode"] == "copy" and seen["args"] == ["sh", "-c", "true"]
    assert cli.main(["bundle", "x:1", "dir", "sh", "--", "-c", "--rootfs-mode"]) == 0
    assert seen["rootfs_mode"] == "auto" and seen["args"] == ["sh", "-c", "--rootfs-mode"]


def test_an_error_names_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--root", "/nonexistent", "pusx", "x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'pusx'" in err and "'logout'" in err
