"""Inputs as a newcomer gives them: filters that match at any depth as .gitignore's do and
say what they left out, every bad entry of a folder named in one error, and --blobs
taking a job's inputs as its table names them."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.core.exceptions import ResourceNotFoundError

from runner import stored
from runner.inputs import Filters, InputError, check_inputs


@pytest.mark.parametrize(
    ("pattern", "kept", "left_out"),
    [
        ("deep/*", ["a/keep.txt", "deepish/x.txt"], ["deep/x.txt", "a/deep/report.txt"]),
        ("*.log", ["a/x.txt"], ["x.log", "a/b/c.log"]),
        ("/deep/*", ["a/deep/report.txt"], ["deep/x.txt"]),  # '/' first: the top only
        ("deep", ["deeper/x.txt"], ["deep/x.txt", "a/deep/b/c.txt"]),  # a folder: all below
        ("tmp/", ["a/tmp"], ["tmp/x", "a/tmp/x"]),  # '/' last: folders only
        ("a/**/z.txt", ["a/z.txt.bak"], ["a/z.txt", "a/b/c/z.txt", "q/a/b/z.txt"]),
        ("r?p[0-9].txt", ["rep10.txt", "r/p1.txt"], ["rep1.txt", "x/rxp2.txt"]),
        ("[!a]*.txt", ["a.txt", "x/ab.txt"], ["b.txt", "x/b.txt"]),
    ],
)
def test_globs_match_at_any_depth_as_gitignore_does(pattern, kept, left_out):
    excluding = Filters(exclude=(pattern,))
    including = Filters(include=(pattern,))
    for relative in kept:
        assert excluding.admit(relative), (pattern, relative)
        assert not including.admit(relative), (pattern, relative)
    for relative in left_out:
        assert not excluding.admit(relative), (pattern, relative)
        assert including.admit(relative), (pattern, relative)


def test_the_filters_say_how_many_files_they_left_out(tmp_path: Path):
    for relative in ("a/deep/report.txt", "a/keep.txt", "deep/x.txt", "b.log", "c.txt"):
        (tmp_path / "in" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / relative).write_text("words")
    said: list[str] = []
    found = check_inputs(
        [str(tmp_path / "in")], Filters(exclude=("deep/*", "*.log")), log=said.append
    )
    assert [item.relative for item in found] == ["a/keep.txt", "c.txt"]
    assert said == [
        "inputs: --include/--exclude left out 3 of the 5 files in the directories given"
    ]
    quiet: list[str] = []
    check_inputs([str(tmp_path / "in")], log=quiet.append)  # no filters: nothing to say
    assert quiet == []


def test_a_folder_with_several_bad_entries_names_them_all_in_one_error(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("fine")
    (folder / "broken.txt").symlink_to(tmp_path / "gone.txt")
    (folder / "also broken.txt").symlink_to(tmp_path / "gone too.txt")
    (folder / "loop").symlink_to(folder / "loop")
    os.mkfifo(folder / "pipe")
    with pytest.raises(InputError) as raised:
        check_inputs([str(folder), str(tmp_path / "missing.txt")])
    message = str(raised.value)
    assert "\n" not in message
    assert message == (
        f"5 inputs cannot be used: input is a broken symlink: {folder / 'also broken.txt'}; "
        f"input is a broken symlink: {folder / 'broken.txt'}; "
        f"input is a symlink loop: {folder / 'loop'}; and 2 more"
    )
    # One problem alone is said as ever.
    with pytest.raises(InputError, match=r"^input not found: .*missing\.txt$"):
        check_inputs([str(tmp_path / "missing.txt"), str(folder / "good.txt")])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file and folder")
def test_unreadable_files_and_folders_below_a_directory_are_problems_too(tmp_path: Path):
    folder = tmp_path / "in"
    (folder / "locked").mkdir(parents=True)
    (folder / "locked" / "hidden.txt").write_text("x")
    (folder / "secret.txt").write_text("x")
    (folder / "secret.txt").chmod(0)
    (folder / "locked").chmod(0)
    try:
        with pytest.raises(InputError) as raised:
            check_inputs([str(folder)])
    finally:
        (folder / "locked").chmod(0o755)
    assert str(raised.value) == (
        f"2 inputs cannot be used: cannot read the folder {folder / 'locked'}: "
        f"Permission denied; cannot read {folder / 'secret.txt'}: permission denied"
    )
    # A folder left out whole is not read, and no problem.
    (folder / "locked").chmod(0)
    try:
        with pytest.raises(InputError, match=r"^cannot read .*secret\.txt: permission denied$"):
            check_inputs([str(folder)], Filters(exclude=("locked/",)))
    finally:
        (folder / "locked").chmod(0o755)


def test_a_folder_left_out_whole_is_one_every_file_below_it_is_left_out_of():
    for pattern in ("locked/", "locked", "/locked", "lock*", "**/locked", "locked/*"):
        filters = Filters(exclude=(pattern,))
        assert filters.leaves_out_folder("locked"), pattern
        assert not filters.admit("locked/deeper/x.txt"), pattern
    for pattern in ("locked/?", "locked/*.txt", "*.txt"):
        assert not Filters(exclude=(pattern,)).leaves_out_folder("locked"), pattern
    assert not Filters(include=("*.txt",)).leaves_out_folder("locked")


class _Containers:
    """The stack's containers as --blobs sees them: which exist, and their blobs."""

    def __init__(self, blobs: dict[str, list[str]]) -> None:
        self.blobs = blobs
        self.outputs = SimpleNamespace(containers=SimpleNamespace(input="input"))

    def container(self, name: str) -> SimpleNamespace:
        def properties() -> None:
            if name not in self.blobs:
                raise ResourceNotFoundError("no such container")

        def list_blobs(name_starts_with: str | None = None) -> list[SimpleNamespace]:
            return [
                SimpleNamespace(
                    name=blob, size=1, etag="e", content_settings=SimpleNamespace(content_md5=b"m")
                )
                for blob in self.blobs.get(name, [])
                if blob.startswith(name_starts_with or "")
            ]

        return SimpleNamespace(get_container_properties=properties, list_blobs=list_blobs)


def test_blobs_of_the_input_container_are_named_as_the_table_names_them():
    clients = _Containers({"input": ["keep1/a.txt", "keep1/b.txt", "input/old/c.txt"]})
    table_names = ["input/keep1/a.txt", "input/keep1/b.txt"]
    for given in ("input/keep1", "keep1", "/input/keep1/"):
        found = stored.stored_inputs(clients, [given])  # type: ignore[arg-type]
        assert [item.path for item in found] == table_names, given
        assert [item.relative for item in found] == table_names
        assert [item.stored.blob for item in found if item.stored] == ["keep1/a.txt", "keep1/b.txt"]
    # A prefix of the input container that starts with its name still means that prefix.
    (old,) = stored.stored_inputs(clients, ["input/old"])  # type: ignore[arg-type]
    assert old.path == "input/input/old/c.txt"
    # The container's name alone is no input: every job stages its inputs there.
    assert stored.where(clients, "input") == [("input", "input")]  # type: ignore[arg-type]


def test_blobs_of_another_container_and_a_prefix_that_names_nothing():
    clients = _Containers({"input": [], "corpus": ["set/c.txt"]})
    (item,) = stored.stored_inputs(clients, ["corpus/set"])  # type: ignore[arg-type]
    assert (item.path, item.stored and item.stored.container) == ("corpus/set/c.txt", "corpus")
    with pytest.raises(InputError, match=r"^--blobs corpus/none: no blob under corpus/none or "):
        stored.stored_inputs(clients, ["corpus/none"])  # type: ignore[arg-type]
    with pytest.raises(
        InputError, match=r"^--blobs nothing-here: no blob under input/nothing-here$"
    ):
        stored.stored_inputs(clients, ["nothing-here"])  # type: ignore[arg-type]
