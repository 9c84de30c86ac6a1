"""The pipelines, read as GitHub reads them: every command a step runs exists, and each
workflow does what docs/gitops.md says it does. (Schema and zizmor: ``make workflows``.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer

from runner.cli import app
from tests import live_summary
from tests.workflows.reading import (
    GITHUB,
    ROOT,
    Command,
    Step,
    action_files,
    commands,
    jq_fields,
    load,
    steps,
    workflow_files,
)

SHELL_UTILITIES = {
    *("echo", "printf", "exit", "continue", "export", "shopt", "[", "mkdir", "cp", "cat"),
    *("tail", "tee", "sed", "grep", "jq"),
}
"""What a script may call besides make, the project's Python modules and the CLIs below:
shell builtins, coreutils, sed, grep and jq, all on GitHub's Ubuntu runners."""

CLI_COMMANDS: dict[str, dict[tuple[str, ...], set[str]]] = {
    "pulumi": {
        ("stack", "output"): {"--json", "--stack"},
        # azure-e2e.yml's stack of its own, from creation to removal
        ("stack", "init"): {"--secrets-provider"},
        ("stack", "select"): {"--create", "--secrets-provider"},
        ("stack", "rm"): {"--yes"},
        ("up",): {"--yes", "--skip-preview", "--policy-pack", "--stack"},
        ("destroy",): {"--yes", "--skip-preview", "--stack"},
        # the destroys lift the storage account's protection first (in the state only)
        ("state", "unprotect"): {"--all", "--yes", "--stack"},
        # drift.yml
        ("preview",): {"--refresh", "--expect-no-changes", "--stack"},
    },
    "az": {("resource", "list"): {"--tag", "--query", "--output"}},
    # drift.yml's report: an issue per drifted stack
    "gh": {
        ("issue", "list"): {"--state", "--limit", "--json", "--jq"},
        ("issue", "create"): {"--title", "--body-file"},
        ("issue", "comment"): {"--body-file"},
    },
}
"""The commands of the pulumi, Azure and GitHub CLIs the scripts use, with the options each
may take (the main stack's preview, deploy and destroy go through pulumi/actions)."""

ACTION_PIN = re.compile(r"uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", text, re.MULTILINE))


def _runner_command(words: list[str]) -> tuple[Any, list[str]]:
    """The runner's (sub)command a command line names (as the CLI defines it: typer's
    click command tree), and the words after it."""
    command = typer.main.get_command(app)
    rest = words[3:]
    while hasattr(command, "commands"):  # a group: the next word names a command
        assert rest, f"no runner command in {words}"
        found = command.commands.get(rest[0])
        assert found is not None, f"the runner has no command {rest[0]!r}: {words}"
        command, rest = found, rest[1:]
    return command, rest


def check_runner_call(words: list[str]) -> None:
    """The subcommand exists and accepts every option given (and each option's value is
    there), parsed by the runner's own CLI definition."""
    command, rest = _runner_command(words)
    options = {
        opt: parameter
        for parameter in command.params
        if parameter.param_type_name == "option"
        for opt in parameter.opts + parameter.secondary_opts
    }
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--":
            break
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            assert name in options, f"'{command.name}' has no option {name}: {words}"
            takes_value = not options[name].is_flag and "=" not in word
            if takes_value:
                assert i + 1 < len(rest), f"{name} needs a value: {words}"
                i += 1
        i += 1


def check_live_summary_call(words: list[str]) -> None:
    """The arguments parse as tests.live_summary's own parser reads them."""
    try:
        live_summary.parser().parse_args(words[3:])
    except SystemExit:
        raise AssertionError(f"python -m tests.live_summary refuses {words[3:]}") from None


PYTHON_MODULES = {"runner": check_runner_call, "tests.live_summary": check_live_summary_call}
"""The project's modules a script may run with ``python -m``, each with its check."""


def check_cli_call(words: list[str], where: str) -> None:
    """A command of CLI_COMMANDS (its longest match: ``stack rm``, ``up``), and only the
    options listed for it; the words that are not options (names, values) are free."""
    commands = CLI_COMMANDS[words[0]]
    known = [name for name in commands if tuple(words[1 : 1 + len(name)]) == name]
    assert known, f"{where}: {' '.join(words[:3])} is not expected"
    name = max(known, key=len)
    options = {word.split("=", 1)[0] for word in words[1 + len(name) :] if word.startswith("-")}
    allowed = commands[name]
    assert options <= allowed, f"{where}: {words[0]} {' '.join(name)}: {options - allowed}"


def check_command(command: Command, where: str) -> None:
    first, words = command.words[0], command.words
    if first == "make":
        targets = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
        assert targets, f"{where}: make with no target"
        assert set(targets) <= make_targets(), f"{where}: no such make target in {targets}"
    elif first.endswith(("python", "python3")) and words[1:2] == ["-m"]:
        module = words[2] if len(words) > 2 else ""
        assert module in PYTHON_MODULES, f"{where}: python -m {module!r}, which no test covers"
        PYTHON_MODULES[module](words)
    elif first in CLI_COMMANDS:
        check_cli_call(words, where)
    else:
        assert first in SHELL_UTILITIES, f"{where}: runs {first!r}, which no test covers"


def run_steps() -> list[Step]:
    return [step for step in steps() if "run" in step.step]


def test_the_pipelines_are_there():
    names = {path.name for path in workflow_files()}
    assert names == {"ci.yml", "infra.yml", "run-job.yml", "azure-e2e.yml", "docs.yml", "drift.yml"}
    assert (GITHUB / "dependabot.yml").is_file()
    assert len(run_steps()) >= 5


@pytest.mark.parametrize("step", run_steps(), ids=lambda step: step.where)
def test_every_run_step_calls_commands_that_exist(step: Step):
    script = step.step["run"]
    assert "${{" not in script, f"{step.where}: pass values through env:, not ${{{{ }}}}"
    found = commands(script)
    assert found, step.where
    for command in found:
        check_command(command, step.where)


@pytest.mark.parametrize(
    "words",
    [
        ["python", "-m", "runner", "submitt", "data/a.txt"],
        ["python", "-m", "runner", "submit", "data/a.txt", "--top-n", "3"],
        ["python", "-m", "runner", "submit", "data/a.txt", "--top"],
        ["python", "-m", "runner", "local", "start"],
    ],
)
def test_the_runner_check_refuses_what_the_cli_refuses(words):
    with pytest.raises(AssertionError):
        check_runner_call(words)


@pytest.mark.parametrize(
    "words",
    [
        ["make", "deploy"],
        ["curl", "https://example.org"],
        ["pulumi", "refresh", "--yes"],
        ["pulumi", "stack", "rm", "--force"],
        ["pulumi", "up", "--target-dependents"],
        ["pulumi", "stack"],
        ["az", "group", "delete", "--name", "rg"],
        ["python", "-m", "pip", "install", "x"],
        ["python", "-m", "tests.live_summary"],
        ["python", "-m", "tests.live_summary", "a.xml", "--phase", "no-equals-sign"],
        ["python", "-m", "tests.live_summary", "a.xml", "--doctr", "d.json"],
    ],
)
def test_the_command_check_refuses_unknown_commands_targets_and_options(words):
    with pytest.raises(AssertionError):
        check_command(Command(words, []), "test")


def test_the_command_check_accepts_what_exists():
    for words in (
        ["python", "-m", "runner", "local", "up"],
        ["make", "venv"],
        ["pulumi", "stack", "rm", "e2e-1", "--yes"],
        ["pulumi", "up", "--yes", "--policy-pack=infra/policy", "--stack", "s"],
        [".venv/bin/python", "-m", "tests.live_summary", "a.xml", "--phase", "up=$S"],
    ):
        check_command(Command(words, []), "test")


def test_actions_are_pinned_by_commit_with_their_version():
    for path in [*workflow_files(), *action_files()]:
        for line in path.read_text().splitlines():
            if "uses:" in line and "uses: $/" not in line:
                assert ACTION_PIN.search(line.strip()), f"{path.name}: {line.strip()}"


def _jobs(name: str) -> dict[str, Any]:
    return load(GITHUB / "workflows" / name)["jobs"]  # type: ignore[no-any-return]


def _uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if step.get("uses", "").startswith(action)]


def test_least_privilege_and_no_dangerous_triggers():
    for path in workflow_files():
        workflow = load(path)
        assert workflow["permissions"] == {}, path.name
        assert not {"pull_request_target", "workflow_run"} & set(workflow["on"]), path.name
        for job_id, job in workflow["jobs"].items():
            for checkout in _uses(job, "actions/checkout@"):
                assert checkout["with"]["persist-credentials"] is False, (path.name, job_id)
            logs_in = bool(_uses(job, "$/.github/actions/prepare")) or "uses" in job
            deploys_pages = bool(_uses(job, "actions/deploy-pages@"))  # Pages checks a token
            has_token = job.get("permissions", {}).get("id-token") == "write"
            assert has_token == (logs_in or deploys_pages), f"{path.name} {job_id}: id-token"
    prepare = load(GITHUB / "actions" / "prepare" / "action.yml")["runs"]["steps"]
    assert not any("cache" in step.get("with", {}) for step in prepare)  # no cache near keys


def test_ci_runs_make_test_with_caches_keyed_on_the_lock_files():
    workflow = load(GITHUB / "workflows" / "ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    (job,) = workflow["jobs"].values()
    assert [step["run"] for step in job["steps"] if "run" in step] == ["make test"]
    python = _uses(job, "actions/setup-python@")[0]["with"]
    node = _uses(job, "actions/setup-node@")[0]["with"]
    assert (python["cache"], python["cache-dependency-path"]) == ("pip", "requirements.lock.txt")
    assert (node["cache"], node["cache-dependency-path"]) == ("npm", "package-lock.json")


def test_infra_previews_pull_requests_and_deploys_main_in_the_protected_environment():
    jobs = _jobs("infra.yml")
    preview = _uses(jobs["preview"], "pulumi/actions@")[-1]["with"]
    assert preview["command"] == "preview"
    assert preview["comment-on-pr"] is True
    assert preview["policyPacks"] == "infra/policy"
    assert {"stack-name", "work-dir", "cloud-url"} <= set(preview)
    assert jobs["preview"]["permissions"]["pull-requests"] == "write"
    for name, command in (("deploy", "up"), ("destroy", "destroy")):
        job = jobs[name]
        # its reviewers approve the run; a name of its own (tests/workflows/test_stack.py)
        assert job["environment"] == "${{ vars.DEPLOY_ENVIRONMENT || 'dev' }}", name
        assert job["concurrency"]["cancel-in-progress"] is False
        assert job["concurrency"]["group"] == jobs["deploy"]["concurrency"]["group"]
        assert _uses(job, "pulumi/actions@")[-1]["with"]["command"] == command
        assert "refs/heads/main" in job["if"]
    assert _uses(jobs["deploy"], "pulumi/actions@")[-1]["with"]["policyPacks"] == "infra/policy"
    assert "destroy" in jobs["destroy"]["if"]
    assert "workflow_dispatch" in jobs["destroy"]["if"]
    smoke = jobs["smoke"]
    assert smoke["needs"] == "deploy"
    assert smoke["uses"] == "$/.github/workflows/run-job.yml"
    assert smoke["with"]["inputs"] == "data/*.txt"


def test_run_job_submits_with_json_keeps_the_results_and_fails_on_the_runner_status():
    workflow = load(GITHUB / "workflows" / "run-job.yml")
    assert set(workflow["on"]["workflow_dispatch"]["inputs"]) == {"stack", "inputs", "top"}
    (job,) = workflow["jobs"].values()
    scripts = {step.get("id") or step.get("name"): step for step in job["steps"]}
    submit = next(
        command
        for command in commands(scripts["submit"]["run"])
        if command.words[:4] == [".venv/bin/python", "-m", "runner", "submit"]
    )
    assert {"--json", "--outputs", "--out"} <= set(submit.words)
    (document,) = submit.stdout_to
    summary = commands(scripts["Job summary"]["run"])[0]
    assert summary.words[3:5] == ["summary", document]
    assert summary.stdout_to == ["$GITHUB_STEP_SUMMARY"]
    artifact = _uses(job, "actions/upload-artifact@")[0]
    assert document.startswith(artifact["with"]["path"])
    verdict = scripts["Fail unless every task succeeded"]
    assert commands(verdict["run"])[-1].words == ["exit", "$STATUS"]
    assert "!= '0'" in verdict["if"]


def test_the_jq_field_reader_sees_keys_not_text():
    assert jq_fields('"a.b=\\(.c)", .d | has("e")') == {"c", "d", "e"}


def test_docs_builds_the_site_strict_and_only_its_deploy_job_may_write_pages() -> None:
    workflow = load(GITHUB / "workflows" / "docs.yml")
    push = workflow["on"]["push"]
    assert push["branches"] == ["main"]
    assert {"docs/**", "mkdocs.yml", "README.md"} <= set(push["paths"])
    jobs = workflow["jobs"]
    assert set(jobs) == {"build", "deploy"}
    build, deploy = jobs["build"], jobs["deploy"]
    assert build["permissions"] == {"contents": "read"}
    assert [step["run"] for step in build["steps"] if "run" in step] == ["make docs"]
    site = load(ROOT / "mkdocs.yml")["site_dir"]
    assert _uses(build, "actions/upload-pages-artifact@")[0]["with"]["path"] == site
    assert _uses(build, "actions/configure-pages@")
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert _uses(deploy, "actions/deploy-pages@")
    assert workflow["concurrency"]["cancel-in-progress"] is False
