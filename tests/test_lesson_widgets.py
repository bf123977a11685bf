"""Every widget a lesson shows is built by one function of its labkit module
(``<module>.<figure>_widget(...)``), and the tests drive that same function:
neither a lesson nor a test declares sliders, dropdowns or figures of its own,
so the widget under test is the one students see."""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import labkit.ui
from labkit.syllabus import LESSONS

ROOT = Path(__file__).resolve().parents[1]
LESSON_SOURCES = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
TEST_SOURCES = sorted((ROOT / "tests").glob("test_*.py"))
# labkit.ui's control and figure builders: only topic modules call them.
BUILDERS = set(labkit.ui.__all__) - {"figure_is_finite"}
# Widgets that are not interactive figures, so widget_driver has nothing to drive.
NOT_DRIVEN = {("labkit.chatbot", "chat_widget")}  # a chat box: it needs a trained assistant and a live kernel


def _labkit_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> labkit module, for ``from labkit import x as y`` and ``import labkit.x as y``."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "labkit":
            aliases.update({a.asname or a.name: f"labkit.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and a.name.startswith("labkit.")})
    return aliases


def _widget_calls(tree: ast.Module) -> set[tuple[str, str]]:
    """(module, function) of every ``alias.<name>_widget(...)`` call on a labkit module."""
    aliases = _labkit_aliases(tree)
    return {(aliases[f.value.id], f.attr) for node in ast.walk(tree) if isinstance(node, ast.Call)
            for f in [node.func] if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
            and f.value.id in aliases and f.attr.endswith("_widget")}


def _builds_controls(tree: ast.Module, imports: bool = True) -> list[str]:
    """What in ``tree`` calls a labkit.ui builder (or, with ``imports``, imports widget machinery), with line numbers."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and imports:
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] == "ipywidgets" or a.name == "labkit.ui"]
        elif isinstance(node, ast.ImportFrom) and node.module and imports:
            if node.module.split(".")[0] == "ipywidgets" or node.module == "labkit.ui" or (
                    node.module == "labkit" and any(a.name == "ui" for a in node.names)):
                found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in BUILDERS:
                found.append(f"line {node.lineno}: {name}(...)")
    return found


def _module_widgets(module: str) -> set[str]:
    mod = importlib.import_module(module)
    return {name for name in getattr(mod, "__all__", []) if name.endswith("_widget")}


@pytest.mark.parametrize("path", LESSON_SOURCES, ids=lambda p: p.stem)
def test_lesson_gets_its_widgets_from_its_module(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not _builds_controls(tree), f"{path.name} builds widget controls itself: {_builds_controls(tree)}"
    calls = _widget_calls(tree)
    assert calls, f"{path.name} shows no widget"
    for module, name in calls:
        fn = getattr(importlib.import_module(module), name, None)
        # A package (labkit.rlhf) may define the widget in one of its modules and re-export it.
        assert inspect.isfunction(fn) and (fn.__module__ == module or fn.__module__.startswith(module + ".")), (
            f"{path.name} calls {module}.{name}, not a function of {module}")
        assert name in _module_widgets(module), f"{module}.{name} is missing from {module}.__all__"
    lesson = next(lesson for lesson in LESSONS if lesson.name == path.stem)
    if lesson.module.startswith("labkit."):
        shown = {name for module, name in calls if module == lesson.module}
        missing = _module_widgets(lesson.module) - shown
        assert not missing, f"{path.name} does not show {lesson.module}'s {sorted(missing)}"


def test_tests_drive_the_lessons_widgets():
    called_by_tests: set[tuple[str, str]] = set()
    for path in TEST_SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        redeclared = _builds_controls(tree, imports=False)
        assert not redeclared, f"{path.name} re-declares widget controls: {redeclared}"
        called_by_tests |= _widget_calls(tree)
    shown = set().union(*(_widget_calls(ast.parse(p.read_text(encoding="utf-8"))) for p in LESSON_SOURCES))
    undriven = shown - called_by_tests - NOT_DRIVEN
    assert not undriven, f"no test drives {sorted(undriven)}"
