"""The program bundle a job's preparation task unpacks, the options that make it, and the
uv binary chosen for the nodes' platform."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from runner import bundle, uv_binary
from runner.fingerprint import Fingerprint
from runner.inputs import InputError, check_inputs, content_md5s
from runner.program import Script


def _tree(root: Path) -> tuple[Path, Path]:
    script = root / "clean.py"
    script.write_text("import helpers\n")
    (root / "helpers.py").write_text("def parse(): ...\n")
    package = root / "lib"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "util.py").write_text("X = 1\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "util.cpython-312.pyc").write_bytes(b"\0")
    return script, package


def _members(built: bundle.Bundle) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(built.data), mode="r:gz") as tar:
        return {member.name: member for member in tar.getmembers()}


def test_code_is_staged_beside_the_script_with_its_layout(tmp_path: Path):
    script, package = _tree(tmp_path)
    environment = bundle.check(None, [tmp_path / "helpers.py", package], None)
    members = _members(bundle.build(script, environment))
    assert sorted(members) == [
        "manifest.json",
        "program/clean.py",
        "program/helpers.py",
        "program/lib/__init__.py",
        "program/lib/sub/util.py",
    ]  # caches left out
    assert members["program/clean.py"].mode == 0o755
    assert all(member.mtime == 0 and member.uid == 0 for member in members.values())


def test_the_same_program_is_the_same_blob(tmp_path: Path):
    script, package = _tree(tmp_path)
    environment = bundle.check(None, [package], None)
    first = bundle.build(script, environment)
    (package / "sub" / "util.py").touch()  # a new mtime, the same content
    assert bundle.build(script, environment).blob == first.blob
    (package / "sub" / "util.py").write_text("X = 2\n")
    assert bundle.build(script, environment).blob != first.blob


def test_a_job_without_requirements_needs_no_environment(tmp_path: Path):
    script, _ = _tree(tmp_path)
    built = bundle.build(script, bundle.Environment())
    with tarfile.open(fileobj=io.BytesIO(built.data), mode="r:gz") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest == {"version": 1, "environment": None}


def test_requirements_and_wheels_make_the_environment(tmp_path: Path):
    script, _ = _tree(tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tinypkg==1.0 --hash=sha256:" + "a" * 64 + "\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "tinypkg-1.0-py3-none-any.whl").write_bytes(b"wheel")
    environment = bundle.check(requirements, [], wheels)
    assert environment.needs_install
    with tarfile.open(fileobj=io.BytesIO(bundle.build(script, environment).data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert tar.extractfile("requirements.txt").read() == requirements.read_bytes()  # type: ignore[union-attr]
    assert manifest["environment"] == {
        "requirements": "requirements.txt",
        "wheels": ["tinypkg-1.0-py3-none-any.whl"],
        "digest": environment.digest(),
    }
    (wheel,) = environment.wheels
    assert wheel.blob == f"wheels/{wheel.sha256}/tinypkg-1.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("-r other.txt", "nested"),
        ("--constraint=c.txt", "nested"),
        ("-e ./mypkg", "nested"),
        ("./mypkg", "local path"),
        ("file:///home/me/pkg", "local path"),
    ],
)
def test_requirements_that_cannot_reach_a_node_are_refused(tmp_path: Path, line: str, says: str):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"requests==2.32.3\n{line}\n")
    with pytest.raises(InputError, match=f"line 2: .*{says}"):
        bundle.check(requirements, [], None)


def test_what_cannot_be_staged_is_refused_in_one_line(tmp_path: Path):
    script, package = _tree(tmp_path)
    with pytest.raises(InputError, match="requirements file not found"):
        bundle.check(tmp_path / "nope.txt", [], None)
    with pytest.raises(InputError, match="--code not found"):
        bundle.check(None, [tmp_path / "nope"], None)
    with pytest.raises(InputError, match=r"holds no \.whl"):
        bundle.check(None, [], package)
    other = tmp_path / "other"
    other.mkdir()
    (other / "helpers.py").write_text("different\n")
    with pytest.raises(InputError, match=r"two files would be staged as helpers\.py"):
        bundle.check(None, [tmp_path / "helpers.py", other / "helpers.py"], None)
    with pytest.raises(InputError, match=r"would replace clean\.py"):
        bundle.build(script, bundle.check(None, [script], None))


def test_a_resubmit_with_other_requirements_names_what_differs(tmp_path: Path):
    script, package = _tree(tmp_path)
    data = tmp_path / "a.txt"
    data.write_text("words")
    inputs = check_inputs([str(data)])
    md5s = content_md5s(inputs)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tinypkg==1.0\n")

    def fingerprint(*code: Path) -> Fingerprint:
        environment = bundle.check(requirements, list(code), None)
        made = Fingerprint.of(Script(script), inputs, md5s, False, environment=environment.record())
        return Fingerprint.read(made.metadata()) or made  # as a resubmit reads it back

    then = fingerprint()
    assert then.differences(fingerprint()) == []
    requirements.write_text("tinypkg==2.0\n")
    assert then.differences(fingerprint(package)) == [
        "the requirements (--requirements changed)",
        "the code (--code given now)",
    ]
    assert Fingerprint.of(Script(script), inputs, md5s, False).differences(then) == [
        "the requirements (--requirements given now)"
    ]


@pytest.mark.parametrize(
    ("vm_size", "machine"),
    [
        ("Standard_D2s_v5", "x86_64"),
        ("Standard_D2ps_v5", "aarch64"),
        ("standard_e4pds_v6", "aarch64"),
    ],
)
def test_an_azure_pool_s_platform_comes_from_its_vm_size(vm_size: str, machine: str):
    found = uv_binary.of_pool(vm_size, "batch.node.ubuntu 24.04")
    assert found == uv_binary.Platform("linux", machine)


def test_a_windows_pool_cannot_build_environments():
    with pytest.raises(InputError, match="need a Linux pool"):
        uv_binary.of_pool("Standard_D2s_v5", "batch.node.windows amd64")


def test_this_machine_s_nodes_get_the_runner_s_own_uv():
    assert uv_binary.binary(uv_binary.this_machine()) == uv_binary.local_binary()
    assert uv_binary.local_binary().is_file()


def test_another_platform_s_uv_comes_from_its_wheel_once(tmp_path: Path):
    asked: list[str] = []

    def download(version: str, tag: str, folder: Path) -> Path:
        asked.append(tag)
        wheel = folder / f"uv-{version}-py3-none-{tag}.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"uv-{version}.data/scripts/uv", b"the uv for " + tag.encode())
            archive.writestr(f"uv-{version}.dist-info/METADATA", "Name: uv\n")
        return wheel

    arm = uv_binary.Platform("linux", "aarch64")
    other = arm if uv_binary.this_machine() != arm else uv_binary.Platform("linux", "x86_64")
    found = uv_binary.binary(other, tmp_path, download)
    assert found.read_bytes().startswith(b"the uv for manylinux_2_17_")
    assert found.stat().st_mode & 0o111
    assert uv_binary.binary(other, tmp_path, download) == found
    assert len(asked) == 1  # cached
