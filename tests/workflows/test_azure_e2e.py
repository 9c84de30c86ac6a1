"""azure-e2e.yml: a stack of its own per run, made like the main stack by the same
identities on the same backend; the probe and the live suite against it, summarised;
and a teardown that runs whatever happened before. Read as GitHub reads it, and its
scripts run by bash with stand-ins for pulumi, az, make and the virtualenv's python."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.workflows.reading import GITHUB, ROOT, Command, commands, load

WORKFLOW = GITHUB / "workflows" / "azure-e2e.yml"
PREPARE = "$/.github/actions/prepare"


def _workflow() -> dict[str, Any]:
    return load(WORKFLOW)


def _steps(job: str) -> dict[str, dict[str, Any]]:
    steps = _workflow()["jobs"][job]["steps"]
    return {step.get("id") or step.get("name") or step["uses"]: step for step in steps}


def _commands(job: str, first: str) -> list[Command]:
    return [
        command
        for step in _workflow()["jobs"][job]["steps"]
        for command in commands(step.get("run", ""))
        if command.words[0] == first
    ]


def _login(job: str) -> str:
    (prepare,) = [step for step in _workflow()["jobs"][job]["steps"] if step.get("uses") == PREPARE]
    return str(prepare["with"]["client-id"])


def test_it_runs_weekly_and_by_hand_only():
    on = _workflow()["on"]
    assert set(on) == {"schedule", "workflow_dispatch"}
    (schedule,) = on["schedule"]
    _minute, _hour, day, month, weekday = schedule["cron"].split()
    assert (day, month) == ("*", "*")
    assert weekday.isdigit()  # one day a week


def test_one_run_at_a_time_each_job_with_a_timeout_and_the_steps_inside_it():
    workflow = _workflow()
    assert workflow["concurrency"]["group"]
    assert workflow["concurrency"]["cancel-in-progress"] is False  # a run reaches its teardown
    for job_id, job in workflow["jobs"].items():
        assert isinstance(job["timeout-minutes"], int), job_id
        steps = sum(step.get("timeout-minutes", 0) for step in job["steps"])
        # a hanging step times out first, so the steps after it (the summary) still run
        assert steps < job["timeout-minutes"], job_id


def test_the_stack_is_named_after_the_run_and_no_other_stack_is_touched():
    assert "${{ github.run_id }}" in _workflow()["env"]["E2E_STACK"]
    for job_id, job in _workflow()["jobs"].items():
        assert not [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/")], job_id
        for command in _commands(job_id, "pulumi"):
            words = command.words
            if words[1] == "stack" and words[2] in ("init", "select", "rm"):
                named = [w for w in words[3:] if not w.startswith("-")][:1]
            else:
                named = [words[i + 1] for i, word in enumerate(words) if word == "--stack"]
            assert named == ["$E2E_STACK"], f"{job_id}: {words}"


def test_the_deploy_identity_creates_it_on_main_with_the_policy_pack():
    job = _workflow()["jobs"]["deploy"]
    assert job["if"] == "github.ref == 'refs/heads/main'"
    assert job["environment"]  # the deploy identity trusts jobs of an environment
    assert _login("deploy") == job["env"]["ARM_CLIENT_ID"] == "${{ vars.AZURE_DEPLOY_CLIENT_ID }}"
    init, up = (command.words for command in _commands("deploy", "pulumi"))
    assert (init[1:3], up[1]) == (["stack", "init"], "up")
    assert up[up.index("--policy-pack") + 1] == "infra/policy"


def test_the_jobs_identity_runs_the_probe_then_the_live_suite_and_the_summary():
    job = _workflow()["jobs"]["test"]
    assert job["needs"] == "deploy"
    assert "environment" not in job  # gh-jobs trusts main, not an environment
    assert _login("test") == "${{ vars.AZURE_JOBS_CLIENT_ID }}"
    steps = _steps("test")
    (read,) = commands(steps["Read the stack outputs"]["run"])[1:]
    (outputs,) = read.stdout_to
    doctor, tee = commands(steps["doctor"]["run"])[:2]
    assert {"--probe", "--json"} <= set(doctor.words)
    assert doctor.words[doctor.words.index("--outputs") + 1] == outputs
    (live,) = [c for c in commands(steps["live"]["run"]) if c.words[0] == "make"]
    assert live.words[:3] == ["make", "live", f"OUTPUTS={outputs}"]
    junit = live.words[3].removeprefix("JUNIT=")
    summary = commands(steps["Job summary"]["run"])[0]
    assert summary.words[2:4] == ["tests.live_summary", junit]
    assert summary.words[summary.words.index("--doctor") + 1] == tee.words[1]
    assert summary.stdout_to == ["$GITHUB_STEP_SUMMARY"]
    assert steps["Job summary"]["if"].startswith("always()")
    artifact = steps["Keep the reports"]
    assert artifact["uses"].startswith("actions/upload-artifact@")
    assert artifact["if"].startswith("always()")
    assert junit.startswith(artifact["with"]["path"])
    assert tee.words[1].startswith(artifact["with"]["path"])


def test_the_teardown_is_a_job_of_its_own_that_runs_whatever_happened():
    job = _workflow()["jobs"]["teardown"]
    assert set(job["needs"]) == {"deploy", "test"}
    assert job["if"].startswith("always()")  # after a failure, a cancel, a timeout
    assert job["environment"] == _workflow()["jobs"]["deploy"]["environment"]
    assert _login("teardown") == job["env"]["ARM_CLIENT_ID"] == _login("deploy")
    destroy = _steps("teardown")["destroy"]
    assert "if" not in destroy
    pulumi = [c.words[1:3] for c in commands(destroy["run"]) if c.words[0] == "pulumi"]
    assert [words[0] for words in pulumi] == ["stack", "state", "destroy", "stack"]
    # the protected storage account unprotected, then destroyed, then the stack removed
    assert (pulumi[0][1], pulumi[1][1], pulumi[3][1]) == ("select", "unprotect", "rm")
    leftovers = _steps("teardown")["Nothing tagged with the stack is left"]
    assert leftovers["if"].startswith("always()")


def test_the_same_backend_and_identities_as_infra():
    e2e, infra = _workflow(), load(GITHUB / "workflows" / "infra.yml")
    for key in ("PULUMI_BACKEND_URL", "AZURE_KEYVAULT_AUTH_VIA_CLI", "ARM_USE_OIDC"):
        assert e2e["env"][key] == infra["env"][key], key
    for key in ("ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID", "STACK"):
        assert e2e["env"][key] == infra["env"][key], key
    deploy = infra["jobs"]["deploy"]
    (deploy_prepare,) = [s for s in deploy["steps"] if s.get("uses") == PREPARE]
    for job_id, job in e2e["jobs"].items():
        assert job["env"]["PULUMI_ACCESS_TOKEN"] == deploy["env"]["PULUMI_ACCESS_TOKEN"], job_id
        (prepare,) = [s for s in job["steps"] if s.get("uses") == PREPARE]
        passphrase = prepare["with"]["config-passphrase"]  # set only when not empty
        assert passphrase == deploy_prepare["with"]["config-passphrase"], job_id
        arm = deploy["env"]["ARM_CLIENT_ID"]
        assert job["env"].get("ARM_CLIENT_ID", arm) == arm, job_id
        assert job["permissions"] == {"contents": "read", "id-token": "write"}, job_id


def test_the_docs_say_how_to_start_it_and_what_it_costs():
    gitops = (ROOT / "docs" / "gitops.md").read_text()
    for text in ("gh workflow run azure-e2e.yml", "environment:e2e", "per run", "$0.096"):
        assert text in gitops, text
    workflows = gitops.split("\n## ", 1)[0]  # the table of the workflows, before section 1
    assert "| `azure-e2e.yml` |" in workflows
    assert "(docs/gitops.md)" in (ROOT / "README.md").read_text()  # the way in


# --- the scripts, run ---------------------------------------------------------------------

KEY_VAULT = "azurekeyvault://v.vault.azure.net/keys/pulumi"
SETTINGS = f"secretsprovider: {KEY_VAULT}\nencryptedkey: abc\nconfig:\n  x:y: z\n"
FAKE = """#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
[ "$1" = "{fail}" ] && exit 3
[ -n "$FAKE_STDOUT" ] && echo "$FAKE_STDOUT"
exit 0
"""


class Checkout:
    """A job's working directory with stand-ins on PATH that log their arguments; the
    virtualenv's python is the real one (tests.live_summary runs)."""

    def __init__(self, root: Path, fail: str = "") -> None:
        self.root, self.log = root / "checkout", root / "calls"
        bin_dir = root / "bin"
        for path in (self.root / ".venv" / "bin", bin_dir):
            path.mkdir(parents=True)
        for name in ("pulumi", "az", "make"):
            (bin_dir / name).write_text(FAKE.replace("{fail}", fail))
            (bin_dir / name).chmod(0o755)
        (self.root / ".venv" / "bin" / "python").symlink_to(sys.executable)
        (self.root / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
        self.env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_LOG": str(self.log),
            "STACK": "dev",
            "E2E_STACK": "e2e-42",
            "GITHUB_OUTPUT": str(root / "output"),
            "GITHUB_STEP_SUMMARY": str(root / "summary"),
        }

    def run(self, job: str, step: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _steps(job)[step]["run"]],
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.mark.parametrize(
    ("stack", "settings", "provider"),
    [("dev", SETTINGS, KEY_VAULT), ("org/dev", "encryptionsalt: v1:x\nconfig: {}\n", "default")],
)
def test_the_stack_gets_a_copy_of_the_main_stacks_settings_and_its_provider(
    tmp_path, stack, settings, provider
):
    checkout = Checkout(tmp_path)
    (checkout.root / "Pulumi.dev.yaml").write_text(settings)
    created = checkout.run("deploy", "create", STACK=stack)
    assert created.returncode == 0, created.stderr
    assert (checkout.root / "Pulumi.e2e-42.yaml").read_text() == settings
    assert checkout.calls() == [f"pulumi stack init e2e-42 --secrets-provider {provider}"]


def test_no_settings_no_stack(tmp_path):
    checkout = Checkout(tmp_path)
    created = checkout.run("deploy", "create")
    assert created.returncode == 1
    assert "::error title=No stack settings::Pulumi.dev.yaml" in created.stdout
    assert checkout.calls() == []
    teardown = checkout.run("teardown", "destroy")
    assert teardown.returncode == 0, teardown.stderr
    assert checkout.calls() == []


def test_the_teardown_destroys_then_removes_and_stops_if_destroy_fails(tmp_path):
    checkout = Checkout(tmp_path / "ok")
    (checkout.root / "Pulumi.dev.yaml").write_text(SETTINGS)
    teardown = checkout.run("teardown", "destroy")
    assert teardown.returncode == 0, teardown.stderr
    assert checkout.calls() == [
        f"pulumi stack select --create e2e-42 --secrets-provider {KEY_VAULT}",
        "pulumi state unprotect --all --yes --stack e2e-42",
        "pulumi destroy --yes --skip-preview --stack e2e-42",
        "pulumi stack rm e2e-42 --yes",
    ]
    assert "Stack e2e-42 destroyed and removed in" in (tmp_path / "ok" / "summary").read_text()

    failing = Checkout(tmp_path / "failing", fail="destroy")
    (failing.root / "Pulumi.dev.yaml").write_text(SETTINGS)
    assert failing.run("teardown", "destroy").returncode == 3
    assert failing.calls()[-1].startswith("pulumi destroy")  # the stack is kept, not removed

    # An empty stack (the run stopped before its first update): nothing to unprotect, which
    # pulumi reports as an error; the teardown goes on and removes it.
    empty = Checkout(tmp_path / "empty", fail="state")
    (empty.root / "Pulumi.dev.yaml").write_text(SETTINGS)
    assert empty.run("teardown", "destroy").returncode == 0
    assert [call.split()[1] for call in empty.calls()] == ["stack", "state", "destroy", "stack"]


def test_resources_left_with_the_stacks_tag_fail_the_teardown(tmp_path):
    checkout = Checkout(tmp_path)
    step = "Nothing tagged with the stack is left"
    assert checkout.run("teardown", step).returncode == 0
    left = checkout.run("teardown", step, FAKE_STDOUT="/subscriptions/s/resourceGroups/g/x")
    assert left.returncode == 1
    assert "/resourceGroups/g/x" in left.stdout
    assert "::error title=Resources left::resources tagged stack=e2e-42" in left.stdout
    assert checkout.calls()[0] == "az resource list --tag stack=e2e-42 --query [].id --output tsv"


def test_the_probe_and_the_suite_fail_their_steps_and_the_summary_still_shows_them(tmp_path):
    checkout = Checkout(tmp_path, fail="live")
    reports = checkout.root / "reports"
    reports.mkdir()
    python = checkout.root / ".venv" / "bin" / "python"
    python.unlink()  # the doctor: a FAIL, as `runner doctor --json` prints it, and exit 3
    python.write_text(
        '#!/bin/sh\necho \'{"ok": false, "checks": [{"name": "probe", "status": "FAIL", '
        '"detail": "no node ran the task in 1800 s", "fix": ""}]}\'\nexit 3\n'
    )
    python.chmod(0o755)
    doctor = checkout.run("test", "doctor")
    assert doctor.returncode == 3
    assert '"status": "FAIL"' in (reports / "doctor.json").read_text()
    live = checkout.run("test", "live")
    assert live.returncode == 3
    assert checkout.calls() == [
        "make live OUTPUTS=reports/outputs.json JUNIT=reports/live-tests.xml"
    ]
    assert (tmp_path / "output").read_text().count("seconds=") == 2

    python.unlink()
    python.symlink_to(sys.executable)
    summary = checkout.run("test", "Job summary", UP_SECONDS="300", DOCTOR_SECONDS="")
    assert summary.returncode == 0, summary.stderr
    text = (tmp_path / "summary").read_text()
    assert "No test report in `reports/live-tests.xml`" in text
    assert "| pulumi up | 5 min 00 s |" in text
    assert "| doctor --probe | not finished |" in text
    assert "| probe | FAIL | no node ran the task in 1800 s |" in text
