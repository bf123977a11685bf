"""labkit's imports point down its layers (see the labkit package docstring).

Infrastructure imports only infrastructure; a substrate imports
infrastructure and itself; a lesson's module imports infrastructure,
substrates and the modules of its own or earlier lessons. Read from the
source with ``ast`` (imports inside functions count too), so a violation is
found without importing anything.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from labkit import syllabus

LABKIT = Path(__file__).resolve().parents[1] / "labkit"
INFRASTRUCTURE = {"labkit", "labkit.validation", "labkit.core", "labkit.ui", "labkit.datasets", "labkit.syllabus",
                  "labkit.exercises", "labkit.numerics", "labkit.intervals", "labkit.reading"}
SUBSTRATES = {"labkit.gridworld", "labkit.lm", "labkit.classifiers"}
# The `labkit` command and grading sit on top: they may use every layer, and nothing imports them.
ENTRY_POINTS = {"labkit.cli", "labkit.grading"}
LESSON_OF = {lesson.module: lesson.number for lesson in syllabus.LESSONS if lesson.module.startswith("labkit.")}


def module_name(path: Path) -> str:
    parts = path.relative_to(LABKIT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LABKIT.rglob("*.py"))}


def place(module: str) -> tuple[str, object]:
    """``(layer, detail)``: infrastructure, a substrate (its package) or a lesson (its number)."""
    if module in INFRASTRUCTURE:
        return "infrastructure", None
    if module in ENTRY_POINTS:
        return "entry point", None
    for substrate in SUBSTRATES:
        if module == substrate or module.startswith(substrate + "."):
            return "substrate", substrate
    if module in LESSON_OF:
        return "lesson", LESSON_OF[module]
    package = next((m for m in LESSON_OF if module.startswith(m + ".")), None)
    if package:  # a module inside a lesson's package (labkit.rlhf.ppo) belongs to that lesson
        return "lesson", LESSON_OF[package]
    if module.startswith("labkit.exercises.lesson"):  # a lesson's exercises belong to that lesson
        return "lesson", int(module.removeprefix("labkit.exercises.lesson"))
    raise LookupError(module)


def imported_labkit_modules(path: Path, known: set[str]) -> set[str]:
    """Every labkit module ``path`` imports (``from labkit import x`` names module ``labkit.x`` when it is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "labkit"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "labkit":
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            found |= subs or {node.module}
    return found


def allowed(source: str, target: str) -> bool:
    (s_layer, s_detail), (t_layer, t_detail) = place(source), place(target)
    rank = {"infrastructure": 0, "substrate": 1, "lesson": 2, "entry point": 3}
    if rank[t_layer] < rank[s_layer]:
        return True
    if s_layer == t_layer and s_layer in ("infrastructure", "entry point"):
        return True
    if s_layer == t_layer == "substrate":
        return s_detail == t_detail  # inside one substrate; substrates do not lean on each other
    if s_layer == t_layer == "lesson":
        return t_detail <= s_detail  # its own lesson (exercises) or an earlier one
    return False


def test_every_module_has_a_layer():
    unplaced = []
    for module in modules():
        try:
            place(module)
        except LookupError:
            unplaced.append(module)
    assert not unplaced, (f"modules with no layer: {unplaced}; name them in tests/test_layers.py (infrastructure or "
                          "substrate) or in labkit/syllabus.py (a lesson's module)")


def test_imports_point_down_the_layers():
    known = set(modules())
    violations = [f"{source} ({place(source)[0]}) imports {target} ({place(target)[0]})"
                  for source, path in modules().items()
                  for target in sorted(imported_labkit_modules(path, known))
                  if target in known and not allowed(source, target)]
    assert not violations, "imports that point up a layer:\n" + "\n".join(violations)


@pytest.mark.parametrize("source, target, ok", [
    ("labkit.lm.harness", "labkit.lm.world", True),        # inside one substrate
    ("labkit.lm.harness", "labkit.intervals", True),       # down to infrastructure
    ("labkit.lm.harness", "labkit.basics", False),         # up to lesson 00's module
    ("labkit.lm.world", "labkit.gridworld", False),        # sideways, to another substrate
    ("labkit.chatbot", "labkit.moderation", True),         # lesson 15 uses lesson 14
    ("labkit.moderation", "labkit.chatbot", False),        # but not the other way
    ("labkit.exercises.lesson15", "labkit.chatbot", True),  # a lesson's exercises use its module
    ("labkit.privacy.experiments", "labkit.privacy.dp_sgd", True),  # inside a lesson's package
    ("labkit.moderation", "labkit.privacy.accountant", False),  # nor does an earlier lesson use its package
    ("labkit.core", "labkit.lm.cache", False),             # infrastructure knows no substrate
    ("labkit.cli", "labkit.lm.cache", True),               # the command uses every layer
    ("labkit.chatbot", "labkit.grading", False),           # and nothing imports it
    ("labkit.rlhf.ppo", "labkit.rlhf.losses", True),       # inside a lesson's package
    ("labkit.rlhf.losses", "labkit.chatbot", True),        # a lesson's package uses earlier lessons
    ("labkit.chatbot", "labkit.rlhf.losses", False),       # but not the other way
])
def test_the_rule_itself(source, target, ok):
    assert allowed(source, target) is ok


def test_imports_are_found_inside_functions_too(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from labkit import chatbot\n    import labkit.lm.world\nfrom labkit.lm.world import make_world\n")
    assert imported_labkit_modules(src, {"labkit.chatbot", "labkit.lm.world"}) == {"labkit.chatbot", "labkit.lm.world"}
