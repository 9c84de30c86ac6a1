"""The pipelines against the stack, from nothing (issue 26): the passphrase is set only when
it exists, the deploy's GitHub environment is a name of its own, every operation on a stack
holds its concurrency group, previews read only, the runner signs in by GitHub OIDC itself,
the path filters cover everything the program and its policy pack import (computed from
their imports), and what is deployed is what was previewed: the same lock, the same CLI."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.workflows.reading import (
    GITHUB,
    ROOT,
    action_files,
    commands,
    load,
    steps,
    workflow_files,
)

PREPARE = "$/.github/actions/prepare"
LOCK = ROOT / "requirements.lock.txt"
PULUMI_VERSION = ROOT / ".pulumi-version"
STACK_GROUP = "pulumi-${{ vars.PULUMI_STACK || 'dev' }}"
DEPLOY_ENVIRONMENT = "${{ vars.DEPLOY_ENVIRONMENT || 'dev' }}"


def _workflow(name: str) -> dict[str, Any]:
    return load(GITHUB / "workflows" / name)


def _prepare(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = [step for step in job.get("steps", []) if step.get("uses") == PREPARE]
    return step  # type: ignore[no-any-return]


def _envs() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every env: mapping, with where it is: workflows, their jobs and steps, actions."""
    for path in workflow_files():
        workflow = load(path)
        yield path.name, workflow.get("env", {})
        for job_id, job in workflow["jobs"].items():
            yield f"{path.name} {job_id}", job.get("env", {})
            for step in job.get("steps", []):
                yield f"{path.name} {job_id} {step.get('name')}", step.get("env", {})
    for path in action_files():
        for step in load(path)["runs"]["steps"]:
            yield f"{path.parent.name} {step.get('name')}", step.get("env", {})


# --- 1. the passphrase: only when the secret exists ------------------------------------


def _passphrase_steps(action: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in action["runs"]["steps"] if "PULUMI_CONFIG_PASSPHRASE" in s.get("run", "")]


def test_no_job_exports_the_passphrase_let_alone_an_empty_one():
    for where, env in _envs():
        assert "PULUMI_CONFIG_PASSPHRASE" not in env, where  # "" when the secret is unset
    # The one way in: the prepare action's step, skipped when the input is empty.
    prepare = load(GITHUB / "actions" / "prepare" / "action.yml")
    assert prepare["inputs"]["config-passphrase"]["default"] == ""
    (step,) = _passphrase_steps(prepare)
    assert step["if"] == "inputs.config-passphrase != ''"
    assert step["env"] == {"PASSPHRASE": "${{ inputs.config-passphrase }}"}
    # Every job that prepares passes the secret itself, which is "" when it does not exist.
    for path in workflow_files():
        for job_id, job in load(path)["jobs"].items():
            if "steps" in job and any(s.get("uses") == PREPARE for s in job["steps"]):
                passphrase = _prepare(job)["with"]["config-passphrase"]
                assert passphrase == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}", (path, job_id)


@pytest.mark.parametrize("passphrase", ["correct horse", "-n", 'a "quoted"\nsecond line $HOME'])
def test_the_passphrase_step_sets_the_value_whole(tmp_path, passphrase):
    prepare = load(GITHUB / "actions" / "prepare" / "action.yml")
    (step,) = _passphrase_steps(prepare)
    github_env = tmp_path / "github-env"
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env={"PASSPHRASE": passphrase, "GITHUB_ENV": str(github_env), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=30,
    )
    # GitHub's multi-line form: NAME<<DELIMITER, the value's lines, DELIMITER.
    first, *value, last = github_env.read_text().splitlines()
    name, delimiter = first.split("<<")
    assert (name, last) == ("PULUMI_CONFIG_PASSPHRASE", delimiter)
    assert "\n".join(value) == passphrase
    assert delimiter not in passphrase


# --- 2. the deploy's environment: a name of its own ------------------------------------


def test_the_environment_name_is_its_own_variable_not_the_stack():
    jobs = _workflow("infra.yml")["jobs"]
    assert jobs["deploy"]["environment"] == jobs["destroy"]["environment"] == DEPLOY_ENVIRONMENT
    for path in workflow_files():
        for job_id, job in load(path)["jobs"].items():
            environment = job.get("environment", "")
            name = environment["name"] if isinstance(environment, dict) else environment
            # the OIDC subject repo:OWNER/REPO:environment:<name> must not carry ORG/
            assert "STACK" not in name, f"{path.name} {job_id}: environment {name}"


# --- 9. one operation at a time per stack ----------------------------------------------


def test_run_job_and_the_smoke_check_hold_the_stacks_concurrency_group():
    jobs = _workflow("infra.yml")["jobs"]
    for name in ("deploy", "destroy"):
        assert jobs[name]["concurrency"] == {"group": STACK_GROUP, "cancel-in-progress": False}
    (run,) = _workflow("run-job.yml")["jobs"].values()
    group = run["concurrency"]["group"]
    assert run["concurrency"]["cancel-in-progress"] is False
    assert group == "pulumi-${{ inputs.stack }}"  # a job started by hand: its stack's group
    smoke = jobs["smoke"]
    # The smoke check's job is run-job's, with the stack infra.yml deploys: the same group.
    stack = smoke["with"]["stack"]
    assert re.fullmatch(r"\$\{\{ .+ \}\}", stack)
    assert group.replace("${{ inputs.stack }}", stack) == STACK_GROUP
    # Not on the calling job as well: the called job would wait for it (a deadlock).
    assert "concurrency" not in smoke


# --- 6. previews: read-only credentials -------------------------------------------------

READ_ONLY_JOBS = [("infra.yml", "preview"), ("drift.yml", "preview")]


@pytest.mark.parametrize(("workflow", "job_id"), READ_ONLY_JOBS)
def test_the_preview_gets_read_only_credentials_not_the_deploys(workflow, job_id):
    job = _workflow(workflow)["jobs"][job_id]
    deploy = _workflow("infra.yml")["jobs"]["deploy"]
    assert "environment" not in job  # so none of the deploy environment's variables
    preview_identity = "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"
    assert job["env"]["ARM_CLIENT_ID"] == _prepare(job)["with"]["client-id"] == preview_identity
    assert job["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_PREVIEW_ACCESS_TOKEN }}"
    assert deploy["env"]["ARM_CLIENT_ID"] != preview_identity
    assert deploy["env"]["PULUMI_ACCESS_TOKEN"] != job["env"]["PULUMI_ACCESS_TOKEN"]
    text = json.dumps(job)
    for credential in ("AZURE_DEPLOY_CLIENT_ID", "secrets.PULUMI_ACCESS_TOKEN"):
        assert credential not in text, f"{workflow} {job_id} gets {credential}"
    # nor through the workflow's env, which every job inherits
    workflow_env = json.dumps(_workflow(workflow).get("env", {}))
    assert "CLIENT_ID" not in workflow_env
    assert "ACCESS_TOKEN" not in workflow_env


# --- 5. the runner signs in by GitHub OIDC itself ---------------------------------------


def test_run_job_lets_the_runner_sign_in_by_github_oidc_and_waits_for_new_roles():
    (job,) = _workflow("run-job.yml")["jobs"].values()
    assert job["permissions"]["id-token"] == "write"
    identity = "${{ vars.AZURE_JOBS_CLIENT_ID }}"
    assert _prepare(job)["with"]["client-id"] == identity  # the CLI session: stack outputs
    runner_steps = {}
    for step in job["steps"]:
        for command in commands(step.get("run", "")):
            if command.words[1:3] == ["-m", "runner"] and command.words[3] in ("doctor", "submit"):
                runner_steps[command.words[3]] = (step, command.words)
    assert set(runner_steps) == {"doctor", "submit"}
    for step, _words in runner_steps.values():
        assert step["env"]["AZURE_CLIENT_ID"] == identity, step["name"]
        assert step["env"]["AZURE_TENANT_ID"] == "${{ vars.AZURE_TENANT_ID }}", step["name"]
    step, words = runner_steps["doctor"]
    assert words[words.index("--wait-for-roles") + 1] == "10m"
    assert step["timeout-minutes"] > 10
    # the Azure variables stay off the other steps (pulumi reads the state as the CLI session)
    assert "AZURE_CLIENT_ID" not in job.get("env", {})


# --- 4. the path filters: everything the program and the policy pack import ------------


def local_packages(root: Path) -> set[str]:
    """The repository's own top-level packages: its top-level folders holding Python."""
    return {
        path.name
        for path in root.iterdir()
        if path.is_dir()
        and not path.name.startswith(".")
        and path.name not in ("node_modules", "site")
        and any(path.rglob("*.py"))
    }


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(root: Path, path: Path) -> set[str]:
    """The modules a file imports, absolute: ``from a import b`` names ``a`` and ``a.b``
    (``b`` may be a submodule); relative imports are resolved against the file's package."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    if path.name == "__init__.py":
        package = path.relative_to(root).parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return {module for module in found if module}


def imported_files(root: Path, start: list[Path]) -> set[Path]:
    """Every file of the repository's own packages that the files in ``start`` import,
    transitively, with the ``__init__.py`` of each package on the way."""
    packages = local_packages(root)
    seen: set[Path] = set()
    queue = list(start)
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imported_modules(root, path):
            parts = module.split(".")
            if parts[0] not in packages:
                continue
            for depth in range(1, len(parts) + 1):  # a.b.c runs a/__init__, a/b/__init__
                found = _module_file(root, ".".join(parts[:depth]))
                if found is not None:
                    queue.append(found)
    return seen


def path_filter_matches(pattern: str, path: str) -> bool:
    """GitHub's path filter: ``**`` any characters, ``*`` any but ``/``."""
    regex = re.escape(pattern).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace("\0", ".*")
    return re.fullmatch(regex, path) is not None


def program_inputs() -> set[str]:
    """What the Pulumi program and its policy pack are made of: their Python files and
    every file of the project's own packages they import, the Pulumi project and stack
    settings, the policy pack's project, the lock, the CLI version, and the Makefile
    (make venv installs the lock)."""
    start = sorted((ROOT / "infra").rglob("*.py"))
    files = {path.relative_to(ROOT).as_posix() for path in imported_files(ROOT, start)}
    settings = {path.name for path in ROOT.glob("Pulumi*.yaml")}
    policy = {path.relative_to(ROOT).as_posix() for path in (ROOT / "infra").rglob("*.yaml")}
    fixed = {"pyproject.toml", LOCK.name, PULUMI_VERSION.name, "Makefile"}
    return files | settings | policy | fixed


def test_the_import_walk_follows_imports_across_packages(tmp_path):
    for name, text in {
        "infra/__init__.py": "",
        "infra/__main__.py": "from infra import config\nimport json\n",
        "infra/config.py": "from contract.spec import SPEC\nfrom . import helpers\n",
        "infra/helpers.py": "",
        "contract/__init__.py": "",
        "contract/spec.py": "from formula import parse\nSPEC = 1\n",
        "formula/__init__.py": "from .syntax import parse\n",
        "formula/syntax.py": "",
        "unused/__init__.py": "",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = imported_files(tmp_path, [tmp_path / "infra" / "__main__.py"])
    assert {path.relative_to(tmp_path).as_posix() for path in found} == {
        "infra/__init__.py", "infra/__main__.py", "infra/config.py", "infra/helpers.py",
        "contract/__init__.py", "contract/spec.py", "formula/__init__.py", "formula/syntax.py",
    }  # fmt: skip


def test_the_path_filter_matcher_reads_globs_as_github_does():
    assert path_filter_matches("infra/**", "infra/policy/rules.py")
    assert path_filter_matches("Pulumi*.yaml", "Pulumi.dev.yaml")
    assert not path_filter_matches("Pulumi*.yaml", "infra/policy/PulumiPolicy.yaml")
    assert not path_filter_matches("infra/*", "infra/policy/rules.py")
    assert not path_filter_matches("contract/**", "contractual/x.py")


@pytest.mark.parametrize("event", ["pull_request", "push"])
def test_the_path_filters_cover_everything_the_program_and_policy_import(event):
    patterns = _workflow("infra.yml")["on"][event]["paths"]
    inputs = program_inputs()
    packages = {path.split("/")[0] for path in inputs if path.endswith(".py")}
    assert packages - {"infra"}, "the walk found no package that infra imports"
    missed = sorted(p for p in inputs if not any(path_filter_matches(glob, p) for glob in patterns))
    assert not missed, f"infra.yml's {event} paths leave out {missed}"


# --- 7. pinned: the same lock and the same CLI for the preview and the deploy -----------


def _locked() -> dict[str, list[tuple[Version, int]]]:
    """The lock's packages: each version (one per marker when the lock forks) and how
    many hashes it lists."""
    entries: dict[str, list[tuple[Version, int]]] = {}
    text = LOCK.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement, *options = line.split(" --hash=")
        name, version = requirement.split(";")[0].strip().split("==")
        hashes = [option for option in options if option.startswith("sha256:")]
        entries.setdefault(_normal(name), []).append((Version(version), len(hashes)))
    return entries


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_python_dependencies_come_from_a_lock_with_hashes():
    locked = _locked()
    assert locked
    for name, versions in locked.items():
        assert all(hashes for _version, hashes in versions), f"{name} has no hash"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        requirement = Requirement(line)
        pinned = locked.get(_normal(requirement.name))
        assert pinned, f"{requirement.name} is not in {LOCK.name}: regenerate it"
        for version, _hashes in pinned:
            assert version in requirement.specifier, f"{LOCK.name}: {requirement.name} {version}"
    # make venv installs the lock, hashes required, then the project alone
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(VENV\)/\.installed: .*\brequirements\.lock\.txt\b", makefile, re.M)
    assert f"pip install --quiet --require-hashes -r {LOCK.name}" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    # Dependabot's pip ecosystem keeps it current: it reads requirements*.txt files only.
    assert re.fullmatch(r"requirements.*\.txt", LOCK.name)
    updates = load(GITHUB / "dependabot.yml")["updates"]
    assert {"package-ecosystem": "pip", "directory": "/"}.items() <= next(
        update for update in updates if update["package-ecosystem"] == "pip"
    ).items()


def test_every_workflow_installs_through_make():
    prepare = load(GITHUB / "actions" / "prepare" / "action.yml")["runs"]["steps"]
    assert next(step["run"] for step in prepare if "run" in step) == "make venv"
    for step in steps():
        for command in commands(step.step.get("run", "")):
            assert command.words[:2] != ["pip", "install"], step.where
            assert command.words[1:4] != ["-m", "pip", "install"], step.where


def test_the_pulumi_cli_is_pinned_in_one_place():
    version = PULUMI_VERSION.read_text()
    assert re.fullmatch(r"\d+\.\d+\.\d+\n?", version), version
    (sdk, _hashes), *_ = _locked()["pulumi"]
    cli = Version(version.strip())
    assert cli >= sdk, f"the Pulumi CLI {cli} is older than the locked SDK {sdk}: raise it"
    actions = [s for s in steps() if s.step.get("uses", "").startswith("pulumi/actions@")]
    assert len(actions) >= 4  # the install in prepare, preview, up, destroy
    for step in actions:
        assert step.step["with"]["pulumi-version-file"] == ".pulumi-version", step.where
        assert "pulumi-version" not in step.step["with"], step.where
