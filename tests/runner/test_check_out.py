"""--out, checked before any upload: a folder that cannot really be created or written is
refused in one line, and the check leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer

from runner.cli.common import EXIT_USAGE, Reply, check_out


def _refused(out: Path | None, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(typer.Exit) as raised:
        check_out(out, Reply())
    assert raised.value.exit_code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_a_folder_that_cannot_be_created_is_refused_in_one_line(capsys):
    said = _refused(Path("/proc/nope"), capsys)
    assert said.startswith(
        "error: --out /proc/nope: cannot create a folder there and write in it ("
    )
    assert not Path("/proc/nope").exists()


def test_a_file_in_the_way_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    said = _refused(tmp_path / "file" / "out", capsys)
    assert said == f"error: --out {tmp_path}/file/out: {tmp_path}/file is a file, not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes any folder")
def test_a_folder_that_cannot_be_written_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    said = _refused(locked / "deep" / "out", capsys)
    assert "cannot create a folder there and write in it (Permission denied)" in said


def test_the_check_leaves_nothing_behind(tmp_path, monkeypatch):
    check_out(tmp_path / "a" / "b" / "out", Reply())
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "old.txt").write_text("mine")
    check_out(tmp_path / "kept", Reply())
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["old.txt"]
    monkeypatch.chdir(tmp_path)  # no --out: results/ in the working directory
    check_out(None, Reply())
    assert not (tmp_path / "results").exists()


def test_no_out_checks_the_results_folder_of_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").write_text("a file named results")
    said = _refused(None, capsys)
    assert said == (
        f"error: the results folder {tmp_path}/results: {tmp_path}/results is a file, "
        "not a directory"
    )
