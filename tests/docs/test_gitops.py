"""docs/gitops.md, followed from nothing, has no step known to fail.

Every ``az``, ``gh`` and ``pulumi`` command the page shows (in its shell blocks, and as
inline code) is a known command group taking the options given: the table below keeps
them, from each tool's reference; where a tool is installed, its ``--help`` confirms the
table. And the steps come in an order that works:

- the settings file is copied to ``Pulumi.<stack>.yaml`` before ``pulumi stack init``,
  which writes the secrets provider's lines into it (copied afterwards, the example
  overwrites them and the stack silently falls back to a passphrase);
- a command that uses a role the reader has just granted themselves (blob data through
  ``--auth-mode login`` or an ``azblob://`` backend, Key Vault keys directly or as the
  secrets provider) waits for the assignment to propagate: it retries (an ``until`` or
  ``while`` loop, a loop that sleeps, or a function that reruns ``"$@"`` and sleeps), or a
  ``sleep`` comes between them. Azure RBAC can take about 10 minutes;
- the deploy's GitHub environment is a name of its own (``DEPLOY_ENVIRONMENT``), created
  and trusted by the deploy identity's federated credential under the same name, never
  the stack's name.

Nothing is run but the tools' ``--help``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from tests.docs.pages import DOCS, Block, code_spans, split

GITOPS = DOCS / "gitops.md"
TOOLS = ("az", "gh", "pulumi")
SHELLS = {"", "console", "bash", "sh", "shell"}

# Each command group the page may use, and its options, from the tools' references. The
# options every command of a tool takes are in GLOBAL.
TABLE: dict[str, set[str]] = {
    # Azure CLI
    "az login": {
        "--tenant", "-t", "--use-device-code", "--identity", "--service-principal",
        "--username", "-u", "--password", "-p", "--scope", "--allow-no-subscriptions",
        "--federated-token",
    },
    "az account show": {"--name", "-n", "--subscription"},
    "az provider register": {
        "--namespace", "-n", "--wait", "--consent-to-permissions", "--management-group-id",
        "--accept-terms", "--subscription",
    },
    "az provider show": {"--namespace", "-n", "--expand", "--subscription"},
    "az provider list": {"--expand", "--subscription"},
    "az group create": {
        "--name", "-n", "--resource-group", "-g", "--location", "-l", "--tags", "--managed-by",
        "--subscription",
    },
    "az group show": {"--name", "-n", "--resource-group", "-g", "--subscription"},
    "az group delete": {
        "--name", "-n", "--resource-group", "-g", "--yes", "-y", "--no-wait",
        "--force-deletion-types", "-f", "--subscription",
    },
    "az identity create": {
        "--name", "-n", "--resource-group", "-g", "--location", "-l", "--tags",
        "--isolation-scope", "--subscription",
    },
    "az identity show": {"--name", "-n", "--resource-group", "-g", "--ids", "--subscription"},
    "az identity federated-credential create": {
        "--identity-name", "--name", "-n", "--resource-group", "-g", "--issuer", "--subject",
        "--audiences", "--claims-matching-expression-value",
        "--claims-matching-expression-version", "--subscription",
    },
    "az ad app federated-credential create": {"--id", "--parameters"},
    "az ad signed-in-user show": set(),
    "az ad group create": {"--display-name", "--mail-nickname", "--description", "--force"},
    "az ad group member add": {"--group", "-g", "--member-id"},
    "az role assignment create": {
        "--assignee", "--assignee-object-id", "--assignee-principal-type", "--role", "--scope",
        "--resource-group", "-g", "--description", "--condition", "--condition-version",
        "--name", "--subscription",
    },
    "az role assignment list": {
        "--assignee", "--role", "--scope", "--resource-group", "-g", "--all",
        "--include-inherited", "--include-groups", "--fill-principal-name",
        "--fill-role-definition-name", "--include-classic-administrators", "--subscription",
    },
    "az storage account create": {
        "--name", "-n", "--resource-group", "-g", "--location", "-l", "--sku", "--kind",
        "--min-tls-version", "--https-only", "--allow-blob-public-access",
        "--allow-shared-key-access", "--access-tier", "--tags", "--public-network-access",
        "--default-action", "--subscription",
    },
    "az storage account show": {
        "--name", "-n", "--resource-group", "-g", "--ids", "--subscription",
    },
    "az storage account blob-service-properties update": {
        "--account-name", "-n", "--resource-group", "-g", "--enable-versioning",
        "--enable-delete-retention", "--delete-retention-days",
        "--enable-container-delete-retention", "--container-delete-retention-days",
        "--enable-change-feed", "--change-feed-retention-days", "--enable-restore-policy",
        "--restore-days", "--subscription",
    },
    "az storage container create": {
        "--name", "-n", "--account-name", "--auth-mode", "--public-access", "--fail-on-exist",
        "--metadata", "--account-key", "--connection-string", "--sas-token", "--blob-endpoint",
        "--timeout", "--resource-group", "-g", "--subscription",
    },
    "az storage container exists": {
        "--name", "-n", "--account-name", "--auth-mode", "--account-key", "--connection-string",
        "--sas-token", "--blob-endpoint", "--timeout", "--subscription",
    },
    "az storage blob list": {
        "--container-name", "-c", "--account-name", "--auth-mode", "--prefix", "--num-results",
        "--subscription",
    },
    "az keyvault create": {
        "--name", "-n", "--resource-group", "-g", "--location", "-l",
        "--enable-rbac-authorization", "--sku", "--retention-days", "--enable-purge-protection",
        "--tags", "--public-network-access", "--subscription",
    },
    "az keyvault show": {"--name", "-n", "--resource-group", "-g", "--subscription"},
    "az keyvault key create": {
        "--vault-name", "--name", "-n", "--kty", "--size", "--ops", "--protection", "-p",
        "--curve", "--id", "--hsm-name", "--tags", "--disabled", "--expires", "--not-before",
        "--exportable", "--policy", "--subscription",
    },
    "az keyvault key show": {
        "--vault-name", "--name", "-n", "--id", "--version", "-v", "--subscription",
    },
    "az batch account show": {"--name", "-n", "--resource-group", "-g", "--subscription"},
    "az batch account login": {
        "--name", "-n", "--resource-group", "-g", "--shared-key-auth", "--show", "--subscription",
    },
    "az batch pool show": {
        "--pool-id", "--account-name", "--account-endpoint", "--account-key", "--select",
        "--expand", "--if-match", "--if-none-match", "--if-modified-since",
        "--if-unmodified-since",
    },
    "az batch location quotas show": {"--location", "-l", "--subscription"},
    "az resource list": {
        "--resource-group", "-g", "--tag", "--location", "-l", "--name", "-n", "--namespace",
        "--resource-type", "--subscription",
    },
    # GitHub CLI
    "gh auth login": {
        "--hostname", "-h", "--git-protocol", "-p", "--scopes", "-s", "--web", "-w",
        "--with-token", "--insecure-storage", "--skip-ssh-key", "--clipboard", "-c",
    },
    "gh api": {
        "--method", "-X", "--input", "--raw-field", "-f", "--field", "-F", "--jq", "-q",
        "--header", "-H", "--paginate", "--slurp", "--silent", "--include", "-i", "--hostname",
        "--template", "-t", "--cache", "--preview", "-p", "--verbose",
    },
    "gh variable set": {
        "--body", "-b", "--env", "-e", "--org", "-o", "--repo", "-R", "--visibility", "-v",
        "--repos", "-r", "--env-file", "-f",
    },
    "gh secret set": {
        "--body", "-b", "--env", "-e", "--org", "-o", "--repo", "-R", "--visibility", "-v",
        "--repos", "-r", "--env-file", "-f", "--app", "-a", "--user", "-u", "--no-store",
        "--no-repos-selected",
    },
    "gh workflow run": {
        "--ref", "-r", "--field", "-F", "--raw-field", "-f", "--json", "--repo", "-R",
    },
    "gh run watch": {"--exit-status", "--interval", "-i", "--compact", "--repo", "-R"},
    "gh issue list": {
        "--label", "-l", "--state", "-s", "--search", "-S", "--limit", "-L", "--json", "--jq",
        "-q", "--repo", "-R",
    },
    # Pulumi CLI
    "pulumi version": set(),
    "pulumi whoami": {"--verbose", "-v", "--json", "-j"},
    "pulumi login": {
        "--cloud-url", "-c", "--local", "-l", "--default-org", "--insecure", "--interactive",
    },
    "pulumi logout": {"--all", "--cloud-url", "-c", "--local", "-l"},
    "pulumi stack": {
        "--stack", "-s", "--show-ids", "-i", "--show-name", "--show-secrets", "--show-urns",
        "-u",
    },
    "pulumi stack init": {
        "--stack", "-s", "--secrets-provider", "--copy-config-from", "--no-select", "--teams",
    },
    "pulumi stack select": {"--stack", "-s", "--create", "-c", "--secrets-provider"},
    "pulumi stack output": {"--stack", "-s", "--json", "-j", "--shell", "--show-secrets"},
    "pulumi stack rm": {
        "--stack", "-s", "--force", "-f", "--yes", "-y", "--preserve-config", "--remove-backups",
    },
    "pulumi stack change-secrets-provider": {"--stack", "-s"},
    "pulumi config set": {
        "--stack", "-s", "--secret", "--plaintext", "--path", "--config-file", "--type",
    },
    "pulumi config get": {"--stack", "-s", "--json", "-j", "--path", "--config-file"},
    "pulumi preview": {
        "--stack", "-s", "--policy-pack", "--policy-pack-config", "--refresh", "-r",
        "--expect-no-changes", "--diff", "--json", "-j", "--suppress-outputs", "--target", "-t",
        "--target-dependents", "--parallel", "-p", "--message", "-m", "--save-plan",
        "--show-replacement-steps", "--show-sames", "--config-file",
    },
    "pulumi up": {
        "--stack", "-s", "--policy-pack", "--policy-pack-config", "--yes", "-y",
        "--skip-preview", "-f", "--refresh", "-r", "--diff", "--expect-no-changes", "--json",
        "-j", "--target", "-t", "--parallel", "-p", "--message", "-m", "--plan",
        "--suppress-outputs", "--config-file",
    },
    "pulumi refresh": {
        "--stack", "-s", "--yes", "-y", "--skip-preview", "-f", "--diff", "--json", "-j",
        "--expect-no-changes",
    },
    "pulumi destroy": {
        "--stack", "-s", "--yes", "-y", "--skip-preview", "-f", "--remove", "--exclude-protected",
        "--target", "-t", "--refresh", "-r", "--diff", "--json", "-j", "--message", "-m",
        "--continue-on-error",
    },
    "pulumi state unprotect": {"--stack", "-s", "--all", "--yes", "-y"},
}  # fmt: skip
GLOBAL: dict[str, set[str]] = {
    "az": {
        "--query", "--output", "-o", "--only-show-errors", "--debug", "--verbose", "--help", "-h",
    },
    "gh": {"--help"},
    "pulumi": {
        "--cwd", "-C", "--color", "--non-interactive", "--emoji", "--logtostderr", "-v",
        "--verbose", "--disable-integrity-checking", "--help", "-h",
    },
}  # fmt: skip
# The options that take no value (the others take the next word; az's lists, LISTS, every
# word up to the next option: --ops encrypt decrypt).
SWITCHES: dict[str, set[str]] = {
    "az": {
        "--yes", "-y", "--no-wait", "--wait", "--fail-on-exist", "--all", "--include-inherited",
        "--include-groups", "--show", "--shared-key-auth", "--only-show-errors", "--debug",
        "--verbose", "--help", "-h", "--disabled", "--exportable", "--force",
    },
    "gh": {
        "--paginate", "--slurp", "--silent", "--include", "-i", "--verbose", "--exit-status",
        "--compact", "--no-store", "--no-repos-selected", "--web", "-w", "--with-token",
        "--insecure-storage", "--skip-ssh-key", "--clipboard", "-c", "--json", "--help",
    },
    "pulumi": {
        "--yes", "-y", "--json", "-j", "--skip-preview", "-f", "--refresh", "-r",
        "--expect-no-changes", "--diff", "--all", "--show-urns", "-u", "--show-ids", "-i",
        "--show-name", "--show-secrets", "--secret", "--plaintext", "--path", "--create",
        "--local", "-l", "--remove", "--exclude-protected", "--force", "--shell",
        "--suppress-outputs", "--non-interactive", "--preserve-config", "--remove-backups",
        "--no-select", "--emoji", "--insecure", "--interactive", "--logtostderr",
        "--show-replacement-steps", "--show-sames", "--target-dependents",
        "--continue-on-error", "--disable-integrity-checking", "--verbose", "--help", "-h",
    },
}  # fmt: skip
LISTS = {"--ops", "--tags", "--audiences", "--ids", "--metadata", "--scope-list"}
# The positional arguments a command group takes after its name (none when not listed).
POSITIONALS: dict[str, int] = {
    "gh api": 1,
    "gh variable set": 1,
    "gh secret set": 1,
    "gh workflow run": 1,
    "gh run watch": 1,
    "pulumi login": 1,
    "pulumi stack init": 1,
    "pulumi stack select": 1,
    "pulumi stack output": 1,
    "pulumi stack rm": 1,
    "pulumi stack change-secrets-provider": 1,
    "pulumi config set": 2,
    "pulumi config get": 1,
    "pulumi state unprotect": 1,
}


# Reading the page's shell: its simple commands, in order, with their context.


@dataclass(frozen=True)
class Command:
    where: str
    words: tuple[str, ...]  # quotes removed; a $(...) is one word, as written
    guarded: bool = False  # retried until it works: in a retry loop or through a retry function
    defined: bool = False  # in a function's body: runs when called, not where it stands

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass
class _Line:
    commands: list[list[str]]
    substitutions: list[str]  # the bodies of the $(...) in it
    heredoc: str | None  # the delimiter of a here-document that starts on it


def _closing(text: str, start: int) -> int:
    """The index of the ``)`` that closes a ``$(`` whose body starts at ``start``."""
    depth, quote, i = 1, "", start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unclosed $( in {text!r}")


def _scan(text: str) -> _Line:
    """A logical line's simple commands (split at ; & && | || ( ) and newlines), without
    comments and redirections; the bodies of its command substitutions; its heredoc."""
    commands: list[list[str]] = [[]]
    substitutions: list[str] = []
    heredoc: str | None = None
    word: list[str] | None = None
    drop_next = False  # the word after a redirection is its target
    i = 0

    def finish() -> None:
        nonlocal word, drop_next
        if word is not None:
            if drop_next:
                drop_next = False
            else:
                commands[-1].append("".join(word))
        word = None

    def substitution(at: int) -> int:
        end = _closing(text, at + 2)
        substitutions.append(text[at + 2 : end])
        assert word is not None
        word.append(text[at : end + 1])
        return end + 1

    while i < len(text):
        char = text[i]
        if word is None and char == "#":
            break
        if char in " \t":
            finish()
            i += 1
        elif char == "\\":
            word = (word or []) + [text[i + 1 : i + 2]]
            i += 2
        elif char == "'":
            end = text.index("'", i + 1)
            word = (word or []) + [text[i + 1 : end]]
            i = end + 1
        elif char == '"':
            word = word or []
            i += 1
            while i < len(text) and text[i] != '"':
                if text[i] == "\\":
                    word.append(text[i + 1 : i + 2])
                    i += 2
                elif text.startswith("$(", i):
                    i = substitution(i)
                else:
                    word.append(text[i])
                    i += 1
            i += 1
        elif text.startswith("$(", i):
            word = word or []
            i = substitution(i)
        elif char in ";&|()":
            finish()
            if char == "&" and text.startswith(">", i + 1):  # &> file
                drop_next, i = True, i + 2
                continue
            commands.append([])
            i += 2 if text[i : i + 2] in {"&&", "||"} else 1
        elif char in "<>":
            if word is not None and "".join(word).isdigit():
                word = None  # the descriptor of 2> or 2>&1
            finish()
            operator = re.match(r"<<-?|>>|>&|<&|>|<", text[i:])
            assert operator is not None
            i += len(operator.group(0))
            if operator.group(0) in {">&", "<&"}:
                digits = re.match(r"\d+-?|-", text[i:])
                if digits:
                    i += len(digits.group(0))
                    continue
            if operator.group(0).startswith("<<"):
                delimiter = re.match(r"\s*(['\"]?)(\w+)\1", text[i:])
                assert delimiter is not None, f"a heredoc without its delimiter: {text!r}"
                heredoc = delimiter.group(2)
                i += len(delimiter.group(0))
                continue
            drop_next = True
        else:
            word = (word or []) + [char]
            i += 1
    finish()
    return _Line([words for words in commands if words], substitutions, heredoc)


def _logical_lines(lines: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """A block's lines with ``\\`` continuations joined, each with its offset; the bodies
    of here-documents left out."""
    i = 0
    while i < len(lines):
        start, text = i, lines[i]
        while text.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        yield start, text
        heredoc = _scan(text).heredoc if "<<" in text else None
        if heredoc is not None:
            while i < len(lines) and lines[i].strip() != heredoc:
                i += 1
            i += 1


KEYWORDS = {"do", "then", "else", "elif", "if", "fi", "!", "{", "}", "time"}
FUNCTION = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*\(\)\s*\{(.*)$")


@dataclass
class _Loop:
    kind: str  # for, while, until
    sleeps: bool = False

    @property
    def retries(self) -> bool:
        return self.kind in {"while", "until"} or self.sleeps


@dataclass
class Script:
    """The commands of a page's shell blocks, in the order a reader runs them, and the
    shell variables it sets (the last value of each)."""

    commands: list[Command] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    wrappers: set[str] = field(default_factory=set)  # functions that rerun "$@" and sleep

    def expand(self, word: str, depth: int = 0) -> str:
        """A word with the page's shell variables put in ($NAME, ${NAME}, ${NAME##*/})."""
        if depth > 5:
            return word

        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2) or match.group(3)
            if name not in self.variables:
                return match.group(0)
            found = self.expand(self.variables[name], depth + 1)
            return found.rsplit("/", 1)[-1] if match.group(2) else found

        return re.sub(r"\$\{(\w+)\}|\$\{(\w+)##\*/\}|\$([A-Za-z_]\w*)", value, word)

    def executed(self) -> list[Command]:
        return [command for command in self.commands if not command.defined]


def script(blocks: list[Block]) -> Script:
    """Reads the shell blocks in order, as one shell session."""
    found = Script()
    loops: list[_Loop] = []
    all_loops: list[tuple[Command, list[_Loop]]] = []

    def add(where: str, words: list[str], defined: bool, wrapped: bool) -> None:
        while words and (words[0] in KEYWORDS or words[0] in {"for", "while", "until", "done"}):
            keyword, words = words[0], words[1:]
            if keyword in {"for", "while", "until"}:
                loops.append(_Loop(keyword))
                if keyword == "for":
                    return  # its list of words is no command
            elif keyword == "done" and loops:
                loops.pop()
        assignments = [w for w in words if re.fullmatch(r"[A-Za-z_]\w*=.*", w, re.DOTALL)]
        while words and words[0] in assignments:
            name, value = words[0].split("=", 1)
            if not defined and len(assignments) == len(words):
                found.variables[name] = value
            words = words[1:]
        if not words:
            return
        if words[0] in found.wrappers and len(words) > 1:
            add(where, words[1:], defined, True)
            return
        command = Command(where, tuple(words), wrapped, defined)
        found.commands.append(command)
        all_loops.append((command, list(loops)))
        if words[0] == "sleep":
            for loop in loops:
                loop.sleeps = True

    def run(where: str, text: str, defined: bool) -> None:
        line = _scan(text)
        for body in line.substitutions:
            run(where, body, defined)
        for words in line.commands:
            add(where, words, defined, False)

    for block in blocks:
        if block.info not in SHELLS:
            continue
        lines = list(_logical_lines(block.lines))
        i = 0
        while i < len(lines):
            offset, text = lines[i]
            where = f"{block.where}+{offset + 1}"
            i += 1
            function = FUNCTION.match(text)
            if function is None:
                run(where, text, defined=False)
                continue
            body = [function.group(2)]
            one_line = re.search(r"\}\s*(#.*)?$", function.group(2))
            if one_line:
                body = [function.group(2)[: one_line.start()]]
            else:
                while i < len(lines) and lines[i][1].strip() != "}":
                    body.append(lines[i][1])
                    i += 1
                i += 1
            before = len(found.commands)
            for part in body:
                run(where, part, defined=True)
            inside = found.commands[before:]
            if any(c.words[0] == "sleep" for c in inside) and '"$@"' in "\n".join(body):
                found.wrappers.add(function.group(1))
    # A command in a loop that retries (until, while, or one that sleeps) is retried.
    found.commands = [
        Command(c.where, c.words, c.guarded or any(loop.retries for loop in enclosing), c.defined)
        for c, enclosing in all_loops
    ]
    return found


def inline_commands(text: str, path: Path) -> list[Command]:
    """The page's inline code that is a command of one of the tools, placeholders such as
    ``<run id>`` read as one word."""
    found = []
    for span in code_spans(split(path, text)[1]):
        words = span.split()
        if len(words) < 2 or words[0] not in TOOLS:
            continue
        line = _scan(re.sub(r"<[^<>]*>", "X", span))
        found += [Command(f"`{span}`", tuple(words)) for words in line.commands]
    return found


# Checking a command against the table.


def group_of(words: tuple[str, ...]) -> str:
    """The longest command group of the table the words start with."""
    for size in range(min(len(words), 6), 0, -1):
        candidate = " ".join(words[:size])
        if candidate in TABLE:
            return candidate
    raise AssertionError(f"unknown command {' '.join(words[:4])!r}")


def check_command(words: tuple[str, ...]) -> None:
    """The command is a known group, every option one it takes, and no word is left over."""
    tool = words[0]
    group = group_of(words)
    known = TABLE[group] | GLOBAL[tool]
    args = words[len(group.split()) :]
    positional, i = 0, 0
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            positional += 1
            continue
        option = word.split("=", 1)[0]
        assert option in known, f"{group} has no option {option}"
        if "=" in word or option in SWITCHES[tool]:
            continue
        assert i < len(args), f"{group}: {option} needs a value"
        i += 1
        while option in LISTS and i < len(args) and not args[i].startswith("-"):
            i += 1  # a list's further values
    allowed = POSITIONALS.get(group, 0)
    assert positional <= allowed, f"{group} takes {allowed} argument(s), not {positional}"


# The order of the steps.


def settings_file(stack: str) -> str:
    return f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"


def order_of_settings_and_stack_init(page: Script) -> list[str]:
    """Each ``pulumi stack init`` (or ``stack select --create``) comes after its settings
    file was copied, and no copy overwrites the file after it."""
    problems = []
    copied: set[str] = set()
    initialised: dict[str, str] = {}
    for command in page.executed():
        words = [page.expand(word) for word in command.words]
        if words[0] in {"cp", "mv", "install"} and len(words) >= 3:
            target = words[-1]
            if re.fullmatch(r"Pulumi\.[^/]+\.yaml", target):
                if target in initialised:
                    problems.append(
                        f"{command.where}: {command.text} overwrites {target} after "
                        f"{initialised[target]}: the secrets provider's lines are lost"
                    )
                copied.add(target)
            continue
        creates = words[:3] == ["pulumi", "stack", "init"] or (
            words[:3] == ["pulumi", "stack", "select"] and {"--create", "-c"} & set(words)
        )
        if not creates:
            continue
        for stack in _positionals(words[3:])[:1] or [_option(words, "--stack", "-s") or ""]:
            target = settings_file(stack)
            initialised[target] = command.text
            if target not in copied:
                problems.append(
                    f"{command.where}: {command.text} before {target} was copied from the example"
                )
    return problems


def _positionals(args: list[str]) -> list[str]:
    """A pulumi command's arguments that are neither options nor their values."""
    found, i = [], 0
    while i < len(args):
        word = args[i]
        i += 1
        if not word.startswith("-"):
            found.append(word)
        elif "=" not in word and word not in SWITCHES["pulumi"]:
            i += 1
    return found


def _option(words: list[str], *names: str) -> str | None:
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                return words[i + 1]
            if word.startswith(f"{name}="):
                return word.split("=", 1)[1]
    return None


def _uses_blob_role(words: list[str]) -> bool:
    if words[:2] == ["az", "storage"] and words[2:3] in (["blob"], ["container"]):
        return _option(words, "--auth-mode") == "login"
    return words[:2] == ["pulumi", "login"] and any(w.startswith("azblob://") for w in words[2:])


def _uses_key_role(words: list[str]) -> bool:
    if words[:3] == ["az", "keyvault", "key"]:
        return True
    provider = _option(words, "--secrets-provider") or ""
    return words[0] == "pulumi" and provider.startswith("azurekeyvault://")


ROLE_USES = {
    "Storage Blob Data": _uses_blob_role,
    "Key Vault": _uses_key_role,
}
"""The data roles a reader grants themselves, each with what uses it."""


def role_waits(page: Script) -> list[str]:
    """The first command that uses a role the reader has just granted themselves is
    retried, or a ``sleep`` comes between them."""
    problems = []
    pending: dict[str, Command] = {}  # role family: its assignment, not yet waited for
    for command in page.executed():
        words = [page.expand(word) for word in command.words]
        if words[0] == "sleep":
            pending.clear()
            continue
        if words[:4] == ["az", "role", "assignment", "create"]:
            assignee = _option(words, "--assignee", "--assignee-object-id") or ""
            role = _option(words, "--role") or ""
            family = next((f for f in ROLE_USES if role.startswith(f)), None)
            if family is not None and "signed-in-user" in assignee:
                pending[family] = command
            continue
        for family, uses in ROLE_USES.items():
            if family in pending and uses(words):
                if not command.guarded:
                    problems.append(
                        f"{command.where}: {command.text} uses the role just granted by "
                        f"{pending[family].text} ({pending[family].where}) without waiting "
                        "for it to propagate (retry it, or sleep)"
                    )
                del pending[family]
    return problems


def environment_names(page: Script) -> list[str]:
    """The deploy's environment is ``DEPLOY_ENVIRONMENT``, not the stack: each environment
    the page creates is trusted by a federated credential of the same name, and the
    variable names one of them."""
    problems = []
    created: dict[str, str] = {}  # expanded name: as written
    subjects: set[str] = set()
    variables: dict[str, str] = {}  # GitHub variable: its --body, as written
    for command in page.executed():
        for word in command.words:
            subject = re.fullmatch(r"repo:[^:]+:environment:(.+)", page.expand(word))
            if subject:
                subjects.add(subject.group(1))
        words = list(command.words)
        if words[:2] == ["gh", "api"] and (_option(words, "-X", "--method") or "GET") == "PUT":
            for path in (w for w in words[2:] if "/environments/" in w):
                name = path.rsplit("/environments/", 1)[1].split("/")[0]
                created[page.expand(name)] = name
        if words[:3] == ["gh", "variable", "set"] and len(words) > 3:
            variables[words[3]] = _option(words, "--body", "-b") or ""
    for name in created:
        if name not in subjects:
            problems.append(
                f"the environment {name} is trusted by no federated credential "
                f"(repo:OWNER/REPO:environment:{name})"
            )
    deploy = variables.get("DEPLOY_ENVIRONMENT")
    stack = variables.get("PULUMI_STACK")
    if deploy is None:
        problems.append("no `gh variable set DEPLOY_ENVIRONMENT`: the stack's name would be used")
    elif page.expand(deploy) not in created:
        problems.append(f"DEPLOY_ENVIRONMENT is {deploy}, an environment the page does not create")
    if stack is not None and (stack == deploy or stack in created.values()):
        problems.append(f"the stack's name, {stack}, names a GitHub environment")
    return problems


# The page.


def read(text: str, path: Path = GITOPS) -> tuple[Script, list[Command]]:
    blocks, _ = split(path, text)
    page = script(blocks)
    return page, [c for c in page.commands if c.words[0] in TOOLS] + inline_commands(text, path)


TEXT = GITOPS.read_text(encoding="utf-8")
PAGE, TOOL_COMMANDS = read(TEXT)


def test_the_page_shows_the_tools_commands() -> None:
    groups = {group_of(c.words) for c in TOOL_COMMANDS}
    assert {"az role assignment create", "gh variable set", "pulumi stack init"} <= groups
    assert len(TOOL_COMMANDS) > 50


@pytest.mark.parametrize(
    "command", TOOL_COMMANDS, ids=[f"{c.where} {c.text}"[:120] for c in TOOL_COMMANDS]
)
def test_every_command_is_a_known_group_with_known_options(command: Command) -> None:
    try:
        check_command(command.words)
    except AssertionError as error:
        raise AssertionError(f"{command.where}: {command.text}: {error}") from None


def test_the_settings_file_is_copied_before_stack_init() -> None:
    assert order_of_settings_and_stack_init(PAGE) == []
    assert any(c.words[:3] == ("pulumi", "stack", "init") for c in PAGE.executed())


def test_no_command_uses_a_role_before_it_has_propagated() -> None:
    assert role_waits(PAGE) == []
    granted = [c for c in PAGE.executed() if c.words[:4] == ("az", "role", "assignment", "create")]
    assert any("signed-in-user" in PAGE.expand(" ".join(c.words)) for c in granted)


def test_the_deploy_environment_is_its_own_name() -> None:
    assert environment_names(PAGE) == []


def test_the_page_never_sets_an_empty_passphrase() -> None:
    assert not re.search(r"PULUMI_CONFIG_PASSPHRASE=(\"\"|''|\s|$)", TEXT, re.MULTILINE)
    for command in PAGE.executed():
        if command.words[:4] == ("gh", "secret", "set", "PULUMI_CONFIG_PASSPHRASE"):
            assert _option(list(command.words), "--body", "-b") != ""


def test_the_page_tells_how_to_destroy_a_protected_stack() -> None:
    assert any(c.words[:3] == ("pulumi", "state", "unprotect") for c in TOOL_COMMANDS), (
        "the storage account is protected: a destroy needs pulumi state unprotect first"
    )


# The checks themselves: they refuse what is wrong, and accept what is right.


@pytest.mark.parametrize(
    "text",
    [
        "az role assignment craete --role Reader --scope x",
        "az storage container create --name state --account-name a --auth-mod login",
        "az keyvault key create --vault-name v --name k --key-type RSA",
        "az identity federated-credential create --identity-name i --name n --audience a",
        "gh variable set X --environment dev --body y",
        "gh secret set A B",
        "pulumi stack init dev --secret-provider azurekeyvault://v/keys/k",
        "pulumi stack init dev prod",
        "pulumi config set a b c",
        "pulumi state unprotect --everything",
        "pulumi preview --refresh --expect-no-change",
        "pulumi deploy",
        "az storage account create --name a extra",
    ],
)
def test_the_table_refuses_what_does_not_exist(text: str) -> None:
    (words,) = _scan(text).commands
    with pytest.raises(AssertionError):
        check_command(tuple(words))


@pytest.mark.parametrize(
    "text",
    [
        "az keyvault key create --vault-name v --name k --kty RSA --ops encrypt decrypt",
        'az account show --query id -o tsv',
        'gh api -X PUT "repos/$REPO/environments/dev" --input -',
        "gh variable set AZURE_DEPLOY_CLIENT_ID --env dev --repo o/r --body x",
        'pulumi config set runnerPrincipalId "$(principal gh-jobs)"',
        "pulumi stack select --create e2e-1 --secrets-provider default",
        "pulumi destroy --yes --skip-preview --stack e2e-1",
        "pulumi state unprotect --all --yes",
    ],
)  # fmt: skip
def test_the_table_accepts_what_exists(text: str) -> None:
    for words in _scan(text).commands:
        check_command(tuple(words))


def _page(*blocks: str) -> str:
    return "\n\n".join(f"```console\n{block.strip()}\n```" for block in blocks)


# The order of the page before this check (docs/gitops.md at the time of issue 26).
STACK_INIT_THEN_COPY = """
pulumi login "$BACKEND"
pulumi stack init dev --secrets-provider "$SECRETS"
cp Pulumi.example.yaml Pulumi.dev.yaml
"""
ROLE_THEN_USE = """
STATE_ID=$(az storage account show --name "$STATE" --query id -o tsv)
az role assignment create --assignee "$(az ad signed-in-user show --query id -o tsv)" \\
  --role "Storage Blob Data Contributor" --scope "$STATE_ID"        # for you
az storage container create --name state --account-name "$STATE" --auth-mode login
VAULT_ID=$(az keyvault show --name "$VAULT" --query id -o tsv)
az role assignment create --assignee "$(az ad signed-in-user show --query id -o tsv)" \\
  --role "Key Vault Crypto Officer" --scope "$VAULT_ID"
az keyvault key create --vault-name "$VAULT" --name pulumi --kty RSA --size 3072 \\
  --ops encrypt decrypt
"""
STACK_AS_ENVIRONMENT = """
federate gh-deploy environment-dev "repo:$REPO:environment:dev"
gh api -X PUT "repos/$REPO/environments/dev" --input - <<EOF
{"reviewers": []}
EOF
gh variable set PULUMI_STACK --repo "$REPO" --body dev
"""


def test_the_order_checks_refuse_the_old_page() -> None:
    page, _ = read(_page(STACK_INIT_THEN_COPY))
    (before, overwrites) = order_of_settings_and_stack_init(page)
    assert "before Pulumi.dev.yaml was copied" in before
    assert "overwrites Pulumi.dev.yaml" in overwrites
    page, _ = read(_page(ROLE_THEN_USE))
    blob, key = role_waits(page)
    assert "az storage container create" in blob
    assert "Storage Blob Data Contributor" in blob
    assert "az keyvault key create" in key
    assert "Key Vault Crypto Officer" in key
    page, _ = read(_page(STACK_AS_ENVIRONMENT))
    assert any("DEPLOY_ENVIRONMENT" in problem for problem in environment_names(page))


def test_the_order_checks_accept_a_wait_and_a_copy_first() -> None:
    retry = """
retry() {
  for attempt in $(seq 30); do
    "$@" && return 0
    sleep 20
  done
  return 1
}
"""
    fixed = ROLE_THEN_USE.replace("az storage container", "retry az storage container")
    page, _ = read(_page(retry, fixed.replace("az keyvault key", "sleep 600\naz keyvault key")))
    assert role_waits(page) == []
    assert [
        c.guarded for c in page.executed() if c.words[:3] == ("az", "storage", "container")
    ] == [True]
    use = "az storage container create --name s --account-name a --auth-mode login"
    loop = f"until {use}; do sleep 20; done"
    grant = (
        'az role assignment create --assignee "$(az ad signed-in-user show)" '
        '--role "Storage Blob Data Owner" --scope x'
    )
    page, _ = read(_page(grant, loop))
    assert role_waits(page) == []
    page, _ = read(_page(grant, use))
    assert len(role_waits(page)) == 1
    copy_first = "\n".join(reversed(STACK_INIT_THEN_COPY.strip().splitlines()[1:]))
    page, _ = read(_page(copy_first))
    assert order_of_settings_and_stack_init(page) == []
    page, _ = read(_page('STACK=org/dev\ncp Pulumi.example.yaml "Pulumi.${STACK##*/}.yaml"\n'
                         'pulumi stack init "$STACK"'))  # fmt: skip
    assert order_of_settings_and_stack_init(page) == []


def test_the_shell_reader() -> None:
    line = _scan("X=$(az a show --q \"[?n=='b']\" -o tsv) && gh api -X PUT p --input - <<EOF # c")
    assert line.commands == [
        ["X=$(az a show --q \"[?n=='b']\" -o tsv)"],
        ["gh", "api", "-X", "PUT", "p", "--input", "-"],
    ]
    assert line.substitutions == ["az a show --q \"[?n=='b']\" -o tsv"]
    assert line.heredoc == "EOF"
    assert _scan("a 2>/dev/null | b >> f 2>&1; c").commands == [["a"], ["b"], ["c"]]
    page, commands = read(
        _page('ME=$(az ad signed-in-user show --query id -o tsv)\nf() { az group show -n "$1"; }')
    )
    assert page.expand('"$ME"').startswith('"$(az ad')
    assert page.expand("$YOU") == "$YOU"
    assert [c.text for c in commands] == [
        "az ad signed-in-user show --query id -o tsv",
        "az group show -n $1",
    ]
    assert [c.defined for c in commands] == [False, True]


# Where a tool is installed, its own help confirms the table.


@cache
def _help(group: str) -> str:
    words = group.split()
    result = subprocess.run(
        [*words, "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    return result.stdout + result.stderr


USED: dict[str, set[str]] = {}
for _command in TOOL_COMMANDS:
    try:
        _group = group_of(_command.words)
    except AssertionError:
        continue
    _options = {w.split("=", 1)[0] for w in _command.words if w.startswith("-") and w != "-"}
    USED.setdefault(_group, set()).update(_options - {"--"})


@pytest.mark.parametrize("group", sorted(USED))
def test_the_installed_tool_knows_the_options(group: str) -> None:
    if shutil.which(group.split()[0]) is None:
        pytest.skip(f"{group.split()[0]} is not installed: the table is what counts")
    text = _help(group)
    missing = sorted(o for o in USED[group] if not re.search(rf"(?<![\w-]){re.escape(o)}\b", text))
    assert not missing, f"{group} --help does not list {missing}"
