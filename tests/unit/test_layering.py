"""The packages depend one way: voice/ on bot/, never bot/ on voice/ (the `waihu` command
line that joins them is voice/cli.py)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def voice_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every `import voice…`, `from voice… import …` and
    `importlib.import_module("voice…")` / `__import__("voice…")` in *source*."""
    found = [(node.lineno, name) for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.stmt | ast.expr) for name in _imported(node)]
    return sorted((line, name) for line, name in found
                  if name == "voice" or name.startswith("voice."))


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module] if node.level == 0 and node.module else []
    if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")):
        return [node.args[0].value]
    return []


def test_bot_imports_nothing_from_voice() -> None:
    files = sorted((REPO / "bot").rglob("*.py"))
    assert len(files) > 10
    hits = [f"{path.relative_to(REPO)}:{line} imports {module}" for path in files
            for line, module in voice_imports(path.read_text(encoding="utf-8"))]
    assert hits == []


# The command line starts the console beside the gateway (`waihu run`, `waihu console`).
_STARTS_THE_CONSOLE = {"voice/cli.py", "voice/commands.py"}


def test_voice_imports_nothing_from_the_console() -> None:
    """The gateway runs without the web console (`waihu run --no-console`, several
    machines): what both need (the desk's write unit of work) lives in bot/store."""
    hits = [f"{path.relative_to(REPO)}:{node.lineno} imports {name}"
            for path in sorted((REPO / "voice").rglob("*.py"))
            if path.relative_to(REPO).as_posix() not in _STARTS_THE_CONSOLE
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.stmt | ast.expr) for name in _imported(node)
            if name == "bot.console" or name.startswith("bot.console.")]
    assert hits == []


def test_the_scan_sees_each_kind_of_import() -> None:
    source = ("import os, voice\n"
              "import voice.gateway as gateway\n"
              "from voice.simulate import simulate\n"
              "from voicemail import box\n"
              "def later():\n"
              "    import importlib\n"
              "    importlib.import_module('voice.cli')\n"
              "    return __import__('voice.tts')\n")
    assert voice_imports(source) == [(1, "voice"), (2, "voice.gateway"), (3, "voice.simulate"),
                                     (7, "voice.cli"), (8, "voice.tts")]


def test_the_bot_command_line_loads_no_voice_module() -> None:
    code = ("import sys, bot.cli, bot.demo; bot.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'voice' or m.startswith('voice.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


# How a call's row is written: the repository's methods, or its columns set directly.
_CALL_WRITES = re.compile(
    r"(?<!callrecord)\.(record_outcome|update_call|note_intent|open_call|set_dial_result|"
    r"add_turn)\(|\bcall\.(ended_at|flow_state|outcome|summary|recording_path)\s*=(?!=)")
_CALL_RECORD_OWNERS = {"bot/callrecord.py", "bot/transcript.py"}


def test_only_the_call_record_writes_call_rows() -> None:
    """One owner of the call record (issue 12): everything else asks bot/callrecord.py (and
    turns go through the event stream to bot/transcript.py)."""
    offenders = []
    for folder in ("bot", "voice", "actions", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            name = path.relative_to(REPO).as_posix()
            if name in _CALL_RECORD_OWNERS or name.startswith("bot/store/"):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _CALL_WRITES.search(line):
                    offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []


def test_the_call_record_check_sees_a_write() -> None:
    assert _CALL_WRITES.search("    CallRepo(session).update_call(call.id, stage='x')")
    assert _CALL_WRITES.search("        call.ended_at = now")
    assert not _CALL_WRITES.search("    callrecord.record_outcome(session, call.id, 'x')")
    assert not _CALL_WRITES.search("    if call.outcome == 'consented':")


# --- private names stay in their module ------------------------------------------------------

_PACKAGES = ("bot", "voice", "actions", "bench")


def _is_our_module(dotted: str) -> bool:
    path = REPO.joinpath(*dotted.split("."))
    return dotted.split(".")[0] in _PACKAGES and (path.with_suffix(".py").exists()
                                                  or (path / "__init__.py").exists())


def private_uses(source: str) -> list[tuple[int, str]]:
    """(line, name) of each private name (one leading underscore) *source* takes from
    another of our modules: `from bot.x import _name`, or `module._name` on a module it
    imported (`import bot.x as x`, `from bot import x`)."""
    tree = ast.parse(source)
    modules: set[str] = set()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name.split(".")[0] for a in node.names
                        if _is_our_module(a.name)}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in _PACKAGES:
            for alias in node.names:
                if _is_our_module(f"{node.module}.{alias.name}"):
                    modules.add(alias.asname or alias.name)
                elif alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
    return sorted(found)


def test_no_module_uses_another_modules_private_names() -> None:
    """A name with a leading underscore belongs to its module; one another module needs is
    made public where it is owned (tests may still reach into a module they test)."""
    hits = [f"{path.relative_to(REPO)}:{line} uses {name}" for package in _PACKAGES
            for path in sorted((REPO / package).rglob("*.py"))
            for line, name in private_uses(path.read_text(encoding="utf-8"))]
    assert hits == []


def test_the_private_name_scan_sees_both_forms() -> None:
    source = ("from bot.agents.figures import _team as team, agent_figures\n"
              "from bot.reports import charts\n"
              "import bot.keys as keys\n"
              "charts._no_data(ax, 't')\n"
              "keys._env_name('x')\n"
              "charts.no_data(ax, 't')\n"
              "self._private()\n")
    assert private_uses(source) == [(1, "bot.agents.figures._team"), (4, "charts._no_data"),
                                    (5, "keys._env_name")]
