"""The local stack's home, with no server: the setting ``up`` applies and says it
changed, what ``status`` shows of it, and stopping every stack under a folder (``make
clean``) with stand-in servers, without the virtual environment."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from contract import spec as contract_spec
from local_stack import __main__ as program
from local_stack import home, servers, stack

ROOT = Path(__file__).resolve().parents[2]
STAND_IN_NAMES = {"emulator": "emulator", "azurite": "azurite", "fault-proxy": "fault_proxy"}
"""What a stand-in's command line holds, as each server's does (-m emulator.fault_proxy)."""


# --- the setting ------------------------------------------------------------------------


def test_the_setting_says_what_changes_in_words(tmp_path: Path):
    faults = servers.Faults(0.1, 7, tmp_path / "faults.log")
    default = home.Setting()
    assert default.changes(default) == []
    assert default.changes(home.Setting(core_quota=0)) == ["core quota from unlimited to 0"]
    assert home.Setting(core_quota=0).changes(default) == ["core quota from 0 to unlimited"]
    everything = home.Setting(faults, 0, 3, home.AUTOSCALE_INTERVAL)
    assert default.changes(everything) == [
        "faults from off to 0.1 of requests (all kinds), seed 7",
        "core quota from unlimited to 0",
        "pool quota from unlimited to 3",
        "autoscale from off to on (every 5s)",
    ]
    kinds = servers.Faults(0.1, 7, tmp_path / "faults.log", ("503", "reset"))
    assert home.Setting(faults).changes(home.Setting(kinds)) == [
        "faults from 0.1 of requests (all kinds), seed 7 to 0.1 of requests (503,reset), seed 7"
    ]


def test_the_setting_is_kept_and_down_forgets_only_the_faults(tmp_path: Path):
    paths = home.Paths(tmp_path)
    assert home.applied(paths) == home.Setting()
    setting = home.Setting(servers.Faults(0.2, 3, paths.fault_log, ("500",)), 0, None, "5s")
    home.record(paths, setting)
    assert home.applied(paths) == setting
    assert json.loads(paths.quotas.read_text()) == {"core": 0}
    assert home.down(paths) == []  # nothing ran
    # The pool was created under the quota and autoscale: the next up compares with them.
    assert home.applied(paths) == home.Setting(core_quota=0, autoscale="5s")
    home.record(paths, home.Setting())
    assert not {paths.faults, paths.quotas, paths.autoscale} & set(tmp_path.iterdir())


def test_the_emulator_restarts_saying_with_what(tmp_path: Path):
    """`local up --faults` once said "...to start it with", the word missing."""
    faults = servers.Faults(0.1, 7, tmp_path / "faults.log")
    off, on = home.Setting(), home.Setting(faults)
    assert stack._restart_reason(off, on) == "with faults"
    assert stack._restart_reason(on, off) == "without faults"
    assert stack._restart_reason(off, home.Setting(core_quota=0)) == "with the quotas asked for"
    assert stack._restart_reason(off, home.Setting(autoscale="5s")) == "with autoscale on"


# --- the pool, made under the setting -------------------------------------------------


class FakeBatch:
    """The calls ``_provision_pool`` makes: a pool that exists or not, a pool quota."""

    def __init__(self, exists: bool, pool_quota_reached: bool = False, short: bool = False) -> None:
        self.exists = exists
        self.pool_quota_reached = pool_quota_reached
        self.short = short  # of nodes, for a core quota: its resize error
        self.calls: list[str] = []

    def get_pool(self, pool_id: str) -> Any:
        if not self.exists:
            raise ResourceNotFoundError("PoolNotFound")
        errors = [SimpleNamespace(code="AccountCoreQuotaReached")] if self.short else []
        return SimpleNamespace(resize_errors=errors)

    def begin_delete_pool(self, pool_id: str, polling_interval: int) -> Any:
        self.calls.append("delete")
        if not self.exists:
            raise ResourceNotFoundError("PoolNotFound")
        self.exists = False
        return SimpleNamespace(result=lambda: None)

    def create_pool(self, body: Any, retry_on_methods: Any) -> None:
        self.calls.append("create")
        if self.pool_quota_reached:
            raise ResourceExistsError("(PoolQuotaReached) Pool quota for the account ...")
        if self.exists:
            raise ResourceExistsError("(PoolExists) The specified pool already exists.")
        self.exists = True


def provision(batch: FakeBatch, before: home.Setting, wanted: home.Setting) -> list[str]:
    lines: list[str] = []
    spec = contract_spec.default_spec()
    stack._provision_pool(batch, spec, before, wanted, lines.append)  # type: ignore[arg-type]
    return lines


def test_a_changed_core_quota_creates_the_pool_again_and_an_unchanged_one_keeps_it():
    zero, default = home.Setting(core_quota=0), home.Setting()
    kept = FakeBatch(exists=True)
    assert provision(kept, zero, zero) == []
    assert kept.calls == ["create"]  # PoolExists: the pool stays as it is

    lifted = FakeBatch(exists=True)
    assert provision(lifted, zero, default) == [
        "deleted pool runner-pool, to create it with no core quota",
        "created pool runner-pool",
    ]
    assert provision(FakeBatch(exists=True), default, zero)[0] == (
        "deleted pool runner-pool, to create it under core quota 0"
    )
    both = provision(FakeBatch(exists=True), default, home.Setting(core_quota=4, autoscale="5s"))
    assert (
        both[0] == "deleted pool runner-pool, to create it with autoscale on and under core quota 4"
    )
    # A pool short of cores under a quota no file remembers (an older down forgot it).
    forgotten = FakeBatch(exists=True, short=True)
    assert provision(forgotten, default, default)[0] == (
        "deleted pool runner-pool, to create it with no core quota"
    )
    assert provision(FakeBatch(exists=True, short=True), zero, zero) == []  # as asked
    # A pool quota alone leaves the pool: the service keeps a pool its quota is below.
    assert provision(FakeBatch(exists=True), default, home.Setting(pool_quota=0)) == []


def test_a_pool_quota_with_no_room_for_the_pool_fails_the_up_saying_so():
    batch = FakeBatch(exists=False, pool_quota_reached=True)
    with pytest.raises(stack.LocalStackError, match="the account's pool quota is 0"):
        provision(batch, home.Setting(), home.Setting(pool_quota=0))


# --- what status shows, and up's usage --------------------------------------------------


def test_status_shows_the_faults_the_quotas_and_autoscale(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    monkeypatch.setenv("RUNNER_LOCAL_DIR", str(tmp_path))
    faults = {"rate": 0.05, "seed": 7, "kinds": None, "log": str(tmp_path / "faults.log")}
    running = stack.Status(
        1001, 1002, {"n1": "idle"}, 1003, faults, {"core": 4, "pool": None}, "5s"
    )
    monkeypatch.setattr(stack, "status", lambda: running)
    assert program.main(["status"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "azurite   running on http://127.0.0.1:1001",
        "proxy     running on http://127.0.0.1:1003",
        "emulator  running on http://127.0.0.1:1002",
        "  node n1: idle",
        f"faults    0.05 of requests (all kinds), seed 7, logged to {tmp_path / 'faults.log'}",
        "quotas    cores 4, pools unlimited",
        "autoscale on (the pool follows its formula, evaluated every 5s)",
    ]
    assert program.main(["status", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["quotas"] == {"core": 4, "pool": None}
    assert document["autoscale"] == "5s"

    monkeypatch.setattr(stack, "status", lambda: stack.Status(1001, 1002, {}))
    assert program.main(["status"]) == 0
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "faults    off",
        "quotas    unlimited",
        "autoscale off (the pool keeps fixed nodes)",
    ]


def test_a_fault_seed_or_kinds_without_faults_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
):
    for arguments in (["--fault-seed", "3"], ["--fault-kinds", "503"]):
        with pytest.raises(SystemExit) as exit_:
            program.main(["up", *arguments])
        assert exit_.value.code == 2
        assert "--fault-seed and --fault-kinds go with --faults RATE" in capsys.readouterr().err


# --- stopping every stack under a folder: make clean ------------------------------------


@pytest.fixture
def stand_ins() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes standing for servers (their command lines name them, as a server's
    does), each in a process group of its own, as the stack starts them; killed after."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def stand_in(
    started: list[subprocess.Popen[bytes]], paths: home.Paths, name: str
) -> subprocess.Popen[bytes]:
    """A stand-in for server ``name`` of the stack at ``paths``, in its pid file."""
    paths.local.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", STAND_IN_NAMES[name]],
        start_new_session=True,
    )
    started.append(process)
    paths.pid(name).write_text(f"{process.pid}\n")
    home.remember_port(paths, name, servers.free_port())
    return process


def stopped(process: subprocess.Popen[bytes]) -> bool:
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_every_stack_under_a_folder_is_stopped(
    tmp_path: Path, stand_ins: list[subprocess.Popen[bytes]]
):
    local = tmp_path / ".local"
    main, tests = home.Paths(local), home.Paths(local / "test-stack")
    processes = [stand_in(stand_ins, main, "emulator"), stand_in(stand_ins, main, "azurite")]
    processes.append(stand_in(stand_ins, tests, "emulator"))
    # A pid file whose number another process has now is stale: that process is left.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    stand_ins.append(other)
    tests.pid("azurite").write_text(f"{other.pid}\n")
    # A stack's own data folders hold no other stack: not searched.
    home.Paths(local / "emulator" / "nodes").local.mkdir(parents=True)
    (local / "emulator" / "nodes" / "emulator.pid").write_text(f"{other.pid}\n")

    assert home.down_under(local) == {
        main.local: ["emulator", "azurite"],
        tests.local: ["emulator"],
    }
    assert all(stopped(process) for process in processes)
    assert other.poll() is None
    assert not tests.pid("azurite").exists()
    assert home.down_under(local) == {main.local: [], tests.local: []}
    assert home.down_under(tmp_path / "none") == {}


def clean_recipe(python: str) -> list[str]:
    """The commands ``make clean`` runs, in order, as make prints them (-n runs none)."""
    outer = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")  # under `make test`: no "Entering directory"
    shown = subprocess.run(
        ["make", "--no-print-directory", "-n", "clean", f"PYTHON={python}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in outer},
    )
    return shown.stdout.splitlines()


def test_make_clean_stops_the_stacks_under_local_first_without_the_venv(
    tmp_path: Path, stand_ins: list[subprocess.Popen[bytes]]
):
    # python -S: no site-packages, so nothing the venv has (the Azure SDKs).
    stop, remove, *rest = clean_recipe(f"{shlex.quote(sys.executable)} -S")
    assert not rest
    assert remove.startswith("rm -rf ")
    assert {".venv", ".local", "results"} <= set(shlex.split(remove))
    assert "local_stack down --under .local" in stop

    # The stop step, run where the project is a folder with its stacks under .local.
    project = tmp_path / "project"
    local = project / ".local"
    processes = [
        stand_in(stand_ins, home.Paths(local), "azurite"),
        stand_in(stand_ins, home.Paths(local / "test-stack"), "fault-proxy"),
    ]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("RUNNER_LOCAL_DIR", None)
    ran = subprocess.run(
        ["bash", "-c", stop],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert all(stopped(process) for process in processes)
    assert ran.stdout.splitlines() == [
        ".local: stopped azurite",
        ".local/test-stack: stopped fault-proxy",
    ]
    # No .local at all (a fresh clone): nothing to stop, and no failure.
    empty = tmp_path / "fresh"
    empty.mkdir()
    ran = subprocess.run(["bash", "-c", stop], cwd=empty, env=environment, timeout=60)
    assert ran.returncode == 0
