"""The README, the CLI's help and the Typer application agree: every command and option named exists.

The test walks Typer's command tree (the real ``metaexpert`` app) and reads every mention of
``metaexpert COMMAND --option`` in the README (code blocks and inline code), in each command's
help (its docstring and its options' help) and in the CLI modules' docstrings. A mention of a
command or option that does not exist fails, and so does a command the README never names.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest
import typer

from metaexpert.cli.app import app
from tests.examples.user_paths import README
from tests.pure_build import PROJECT_ROOT

_OPTION = re.compile(r"^-{1,2}[A-Za-z][A-Za-z0-9-]*")
#: ``metaexpert`` as a command, not as a module (``from metaexpert import``, ``metaexpert.cli``).
_MENTION = re.compile(
    r"(?<![\w./-])(?<!from )(?<!import )metaexpert((?:[ \t]+[^\s`#|]+|[ \t]+\|)+)"
)
_COMMAND_WORD = re.compile(r"^[a-z][a-z-]*$")


@functools.cache
def command_tree() -> dict[tuple[str, ...], Any]:
    """Every command of the app by its path, e.g. ("secrets", "set")."""
    root = typer.main.get_command(app)
    tree: dict[tuple[str, ...], Any] = {(): root}

    def walk(group: Any, path: tuple[str, ...]) -> None:
        if hasattr(group, "commands"):  # a group (Typer ships its own click: duck-typed)
            for name, command in group.commands.items():
                tree[(*path, name)] = command
                walk(command, (*path, name))

    walk(root, ())
    return tree


def options_of(command: Any) -> set[str]:
    names = {"--help"}
    for parameter in command.params:
        if getattr(parameter, "param_type_name", None) == "option":
            names.update(parameter.opts)
            names.update(parameter.secondary_opts)
    return names


def mentions(text: str) -> list[tuple[tuple[str, ...], list[str], str]]:
    """(command path, options, the mention) for every ``metaexpert ...`` in ``text``.

    ``a | b`` alternatives name either another command (``secrets keygen | set``) or another
    option of the same command (``[--steps N | --duration S]``); indented lines continue the
    command above them (the reference block wraps long lines).
    """
    tree = command_tree()
    joined = re.sub(r"\n[ \t]+(?=[\[-])", " ", text)  # continuation lines of a wrapped synopsis
    found = []
    for match in _MENTION.finditer(joined):
        pieces = [piece.split() for piece in re.split(r"[ \t]\|[ \t]", match.group(1))]
        current: tuple[str, ...] | None = None
        for index, words in enumerate(pieces):
            words = [word.strip("[]().,;:'\"") for word in words]
            words = [word for word in words if word and word != "..."]
            if not words:
                continue
            if index == 0 and not _COMMAND_WORD.match(words[0]):
                break  # ``metaexpert COMMAND --help``, ``metaexpert 0.1.0``: not a particular command
            path, rest = _resolve(words, tree, current)
            if path is None:
                if current is None:
                    found.append(((words[0],), [], match.group(0)))  # unknown command
                    break
                path, rest = current, words
            current = path
            options = [_OPTION.match(word).group(0) for word in rest if _OPTION.match(word)]
            found.append((path, options, match.group(0).strip()))
    return found


def _resolve(
    words: list[str], tree: dict, current: tuple[str, ...] | None
) -> tuple[tuple[str, ...] | None, list]:
    """The longest command path the words start with (an alternative may name a sibling)."""
    for base in ([current[:-1]] if current else []) + [()]:
        path = base
        consumed = 0
        for word in words:
            if (*path, word) in tree:
                path = (*path, word)
                consumed += 1
            else:
                break
        if consumed:
            return path, words[consumed:]
    return None, words


def _check(text: str, where: str) -> list[str]:
    tree = command_tree()
    problems = []
    for path, options, mention in mentions(text):
        if path not in tree:
            problems.append(
                f"{where}: `{mention}` names the command {' '.join(path)!r}, which does not exist"
            )
            continue
        known = options_of(tree[path])
        for option in options:
            if option not in known:
                problems.append(
                    f"{where}: `{mention}`: metaexpert {' '.join(path)} has no option {option} "
                    f"(it has {', '.join(sorted(known))})"
                )
    return problems


def test_readme_with_every_named_command_and_option_exists():
    problems = _check(README.read_text(encoding="utf-8"), "README.md")
    assert not problems, "\n".join(problems)


def test_readme_with_every_command_of_the_app_names_it():
    text = README.read_text(encoding="utf-8")
    named = {path for path, _options, _mention in mentions(text)}
    # A group counts as named when one of its commands is (``metaexpert secrets set``), and a
    # group's command when the group is (``metaexpert secrets`` leads to its own --help).
    missing = [
        " ".join(path)
        for path in command_tree()
        if path
        and not any(
            other[: len(path)] == path or path[: len(other)] == other for other in named if other
        )
    ]
    assert not missing, f"commands the README never names: {missing}"


def test_readme_with_every_make_target_named_exists():
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    named = set(re.findall(r"`?make ([a-z][a-z-]*)", README.read_text(encoding="utf-8")))
    assert named and named <= targets, (
        f"README names make targets that do not exist: {sorted(named - targets)}"
    )


@pytest.mark.parametrize("path", sorted(p for p in command_tree() if p), ids=lambda p: " ".join(p))
def test_help_with_every_option_and_command_it_names_exists(path):
    tree = command_tree()
    command = tree[path]
    texts = [command.help or ""] + [
        getattr(parameter, "help", None) or "" for parameter in command.params
    ]
    text = "\n".join(texts)
    problems = _check(text, f"metaexpert {' '.join(path)} --help")
    # Options named on their own (``until --steps, --duration``) belong to this command or to
    # one the help names.
    named_commands = [tree[p] for p, _o, _m in mentions(text) if p in tree]
    known = set().union(options_of(command), *(options_of(other) for other in named_commands))
    for option in set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text)):
        if option not in known:
            problems.append(
                f"metaexpert {' '.join(path)} --help names {option}, which it does not have"
            )
    assert not problems, "\n".join(problems)


def test_cli_module_docstrings_with_every_named_command_and_option_exist():
    problems = []
    for module in sorted((PROJECT_ROOT / "metaexpert" / "cli").glob("*.py")):
        source = module.read_text(encoding="utf-8")
        match = re.match(r'\s*"""(.*?)"""', source, re.DOTALL)
        if match:
            problems.extend(_check(match.group(1), str(module.relative_to(PROJECT_ROOT))))
    assert not problems, "\n".join(problems)


def test_mentions_with_alternatives_and_wrapped_lines_resolve_each_command():
    text = (
        "metaexpert secrets keygen | set --exchange binance | show\n"
        "metaexpert run FILE [--steps N | --duration S]\n"
        "metaexpert backtest FILE --start D\n    [--no-html]\n"
        "metaexpert frobnicate --now\n"
    )
    found = mentions(text)
    assert (("secrets", "keygen"), []) in [(p, o) for p, o, _m in found]
    assert (("secrets", "set"), ["--exchange"]) in [(p, o) for p, o, _m in found]
    assert (("run",), ["--duration"]) in [(p, o) for p, o, _m in found]
    assert (("backtest",), ["--start", "--no-html"]) in [(p, o) for p, o, _m in found]
    assert any("frobnicate" in problem for problem in _check(text, "sample"))
    assert not _check("metaexpert run FILE --steps 2", "sample")
    assert _check("metaexpert run FILE --stepz 2", "sample")
