"""What the whole suite shares: Azurite for the session, the stack under test, the
markers, and the budget lines every run ends with.

The stack under test is the one ``--outputs FILE`` (or ``RUNNER_TEST_OUTPUTS``) names,
a deployed Azure stack or a local one; without it, the session starts a local stack of
its own (one per xdist worker). End-to-end tests see only its outputs file, and sign
in as the runner does (``runner.clients.connect``): keys for a local stack, Entra ID
for Azure. Tests marked ``emulator_only`` need what only the emulator has (faults,
kills, quotas, its clock, its logs); against Azure they are skipped, with their reason.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.outputs import StackOutputs
from local_stack import servers
from local_stack import stack as local_stack
from tests import stacks as counting

OUTPUTS_VARIABLE = "RUNNER_TEST_OUTPUTS"
E2E_FIXTURES = frozenset(
    {"azurite", "oauth_azurite", "storage_connection", "emulator", "live_batch", "stacks"}
    | {"session_stack", "stack"}
)
"""Fixtures that start real servers: a test using one is end to end (``make check`` skips it)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--outputs",
        metavar="FILE",
        default=os.environ.get(OUTPUTS_VARIABLE),
        help="run the end-to-end tests against the stack these outputs describe (a "
        "deployed Azure stack: signed in as the runner is); default: $RUNNER_TEST_OUTPUTS, "
        "else a local stack the session starts",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: starts real servers or runs the runner against a stack (not in make check)"
    )
    config.addinivalue_line(
        "markers",
        "emulator_only(reason): needs what only the local stack has; skipped against Azure",
    )


def given_outputs(config: pytest.Config) -> StackOutputs | None:
    """The outputs ``--outputs`` names, if any."""
    option = config.getoption("--outputs")
    return StackOutputs.read(Path(option)) if option else None


def against_azure(config: pytest.Config) -> bool:
    given = given_outputs(config)
    return given is not None and given.local is None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    azure = against_azure(config)
    for item in items:
        e2e = "tests/e2e/" in item.nodeid or "tests/e2e/" in str(item.path)
        served = item.get_closest_marker("served") is not None  # a real emulator process
        if e2e or served or E2E_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
        marker = item.get_closest_marker("emulator_only")
        if azure and marker is not None:
            reason = marker.args[0] if marker.args else "needs the local stack"
            item.add_marker(pytest.mark.skip(reason=f"emulator only: {reason}"))


# --- servers ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    data = tmp_path_factory.mktemp("azurite")
    server = servers.start_azurite(data / "blobs", data / "azurite.log")
    try:
        yield server
    finally:
        servers.stop(server)


@pytest.fixture(scope="session")
def storage_connection(azurite: servers.Server) -> str:
    return servers.azurite_connection_string(azurite.port)


@pytest.fixture
def stacks(request: pytest.FixtureRequest) -> counting.Stacks:
    """Start local stacks of the test's own, counted for its file."""
    return counting.Stacks(counting.file_of(request))


@pytest.fixture(scope="session")
def session_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_stack.Paths]:
    """A local stack of the session's own (its emulator logging each request), started
    at first use: the stack under test without ``--outputs``, and the stack of the
    emulator-only tests that look inside one."""
    paths = local_stack.Paths(tmp_path_factory.mktemp("local-stack"))
    try:
        counting.counted(
            "(the session's local stack)",
            paths,
            lambda: local_stack.up(paths=paths, log_requests=True),
        )
        yield paths
    finally:
        local_stack.down(paths)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The outputs file of the stack under test, and nothing else of it: a copy, away
    from the files of a local stack the session started."""
    given = request.config.getoption("--outputs")
    if given:
        return Path(given).resolve()
    paths: local_stack.Paths = request.getfixturevalue("session_stack")
    copy = tmp_path_factory.mktemp("stack-under-test") / "outputs.json"
    copy.write_bytes(paths.outputs.read_bytes())
    return copy


@pytest.fixture(scope="session")
def stack_outputs(stack: Path) -> StackOutputs:
    return StackOutputs.read(stack)


# --- the budget -------------------------------------------------------------------------


@pytest.hookimpl(optionalhook=True)  # xdist's hook: unknown without it
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist: a worker's stack starts join the controller's."""
    output = getattr(node, "workeroutput", {})
    counting.STARTED.update(Counter(output.get("stack_starts", {})))


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the counts to the controller
        workeroutput["stack_starts"] = dict(counting.STARTED)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in counting.summary(counting.STARTED):
        terminalreporter.write_line(line)
