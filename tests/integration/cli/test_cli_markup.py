"""Values that come from data are printed literally by every command, never read as markup.

Rich reads ``[/]`` or ``[bold]`` in a string as markup: a value holding it used to
crash a command (``MarkupError``) or vanish from its output (``purpose isAnyOf
[a, b]`` printed as ``purpose isAnyOf : holds``).  Each test below runs the real
command on data holding markup, through the same entry point a user runs.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from tests.builders.episodes import make_episode
from typer.testing import CliRunner

from dure.cli.main import app
from dure.client.store import EpisodeStore
from dure.policies.errors import CATALOG
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import sign_document

runner = CliRunner()
MARKUP = ("[/]", "[bold]x[/bold]")
CLI_ROOT = Path(__file__).parents[3] / "policies" / "dure" / "cli"


def dure(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "400", **(env or {})})
    return result.exit_code, result.output


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    for name in ("site", "operator"):
        code, out = dure("keys", "new", tmp_path / f"{name}.key")
        assert code == 0, out
    return tmp_path


def _policy_value(tasks: list[str]) -> dict[str, Any]:
    code, text = dure("policy", "template", "--site", "factory-a")
    assert code == 0, text
    value: dict[str, Any] = json.loads(text)
    value["target"]["refinement"][0]["rightOperand"] = tasks
    return value


def _signed(keys: Path, tasks: list[str]) -> tuple[Path, Path]:
    """A policy over ``tasks`` signed with the kernel (as any other tool could), and a job."""
    raw = json.dumps(_policy_value(tasks)).encode()
    policy = UsagePolicy.from_json_bytes(raw, source="policy.json")
    envelope = sign_document("policy", policy, SigningKey.load(keys / "site.key"))
    (keys / "p.dsse").unlink(missing_ok=True)
    (keys / "p.dsse").write_bytes(envelope.to_json())
    for stale in ("j.dsse", "job.json"):
        (keys / stale).unlink(missing_ok=True)
    code, job_json = dure("job", "template", "--task", "pick-place")
    (keys / "job.json").write_text(job_json)
    code, out = dure(
        "job", "sign", keys / "job.json", "--key", keys / "operator.key", "--out", keys / "j.dsse"
    )
    assert code == 0, out
    return keys / "p.dsse", keys / "j.dsse"


def _check(keys: Path, policy: Path, job: Path) -> tuple[int, str]:
    return dure(
        "policy",
        "check",
        policy,
        "--signer",
        keys / "site.key.pub",
        "--job",
        job,
        "--operator",
        keys / "operator.key.pub",
    )


def test_policy_check_prints_bracketed_lists_and_markup_literally(keys: Path) -> None:
    policy, job = _signed(keys, ["pick-place", *MARKUP])
    code, out = _check(keys, policy, job)
    assert code == CATALOG["cli.denied"].exit_code, out  # the vocabulary check denies '[/]'
    purposes = "[urn:dure:purpose:bc-manipulation:v1, urn:dure:purpose:bc-assembly]"
    assert f"purpose isAnyOf {purposes}: holds" in out
    assert "dure:task isAnyOf [pick-place, [/], [bold]x[/bold]]" in out
    assert "dure:tag isNoneOf [customer-confidential]" in out
    policy, job = _signed(keys, ["pick-place"])
    code, out = _check(keys, policy, job)
    assert code == 0, out
    selector = "dure:task isAnyOf [pick-place] and dure:tag isNoneOf [customer-confidential]"
    assert f"episodes: {selector}" in out
    assert "Traceback" not in out


def test_policy_verify_prints_the_site_and_ids(keys: Path) -> None:
    policy, _ = _signed(keys, ["pick-place"])
    code, out = dure("policy", "verify", policy, "--signer", keys / "site.key.pub")
    assert code == 0, out
    assert "valid policy of urn:dure:site:factory-a" in out


def test_policy_sign_names_a_field_holding_markup_literally(keys: Path) -> None:
    (keys / "p.json").write_text(json.dumps(_policy_value(["pick-place", "[/]"])))
    code, out = dure(
        "policy", "sign", keys / "p.json", "--key", keys / "site.key", "--out", keys / "p.dsse"
    )
    assert code == CATALOG["kernel.document"].exit_code, out
    assert "'[/]' is not a name" in out and "hint:" in out
    assert not (keys / "p.dsse").exists()


def test_an_error_naming_a_path_with_markup_prints_it(keys: Path) -> None:
    folder = keys / "["
    folder.mkdir()
    missing = folder / "][bold]x[/bold].dsse"
    code, out = dure("policy", "verify", missing, "--signer", keys / "site.key.pub")
    assert code == CATALOG["cli.file"].exit_code, out
    assert f"error: {missing}: cannot read" in out
    assert "Traceback" not in out and "MarkupError" not in out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    episode = make_episode(
        0, task="[/]<script>", cell="[bold]c[/bold]", robot="[red]r", tags=("[/]", "ok")
    )
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add([episode])
    return tmp_path / "home"


def test_episodes_list_and_show_print_stored_markup_literally(home: Path) -> None:
    code, out = dure("factory", "episodes", "list", "--home", home)
    assert code == 0, out
    assert "[/]<script>" in out and "[bold]c[/bold]" in out and "[red]r" in out
    assert "[/], ok" in out
    episode_id = out.split("[/]<script>")[0].split("│")[-2].strip()
    code, out = dure("factory", "episodes", "show", episode_id, "--home", home)
    assert code == 0, out
    assert "[/]<script>: do [/]<script>" in out
    assert "[bold]c[/bold] / [red]r" in out
    code, out = dure("factory", "episodes", "list", "--home", home, "--task", "[/]<script>")
    assert code == 0 and "1 episodes" in out and "[/]<script>" in out


def _consoles_and_markup(tree: ast.Module) -> list[str]:
    """Calls in a CLI module that would read strings as markup."""
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        keywords = {k.arg: k.value for k in node.keywords}
        markup = keywords.get("markup")
        if name in ("Console", "TextColumn") and not (
            isinstance(markup, ast.Constant) and markup.value is False
        ):
            problems.append(f"line {node.lineno}: {name}(...) without markup=False")
        if name in ("status", "track") and any(isinstance(arg, ast.JoinedStr) for arg in node.args):
            problems.append(f"line {node.lineno}: {name}() of an f-string (read as markup)")
        if name == "print" and keywords.get("markup") is not None:
            problems.append(f"line {node.lineno}: print(markup=...) overrides the console")
        if name == "Progress" and not node.args:
            problems.append(f"line {node.lineno}: Progress() with Rich's markup columns")
    return problems


@pytest.mark.parametrize(
    "module", sorted(CLI_ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(CLI_ROOT))
)
def test_no_cli_module_prints_with_markup(module: Path) -> None:
    """Every console comes from dure.cli.output.make_console (markup off)."""
    problems = _consoles_and_markup(ast.parse(module.read_text(encoding="utf-8")))
    assert not problems, problems
