"""The project's promises: fresh notebooks, one environment, the README's commands."""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml

import build_lessons
from labkit import syllabus

ROOT = Path(__file__).resolve().parents[1]

# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_name(name)] = version.strip()
    return pins


def _pyproject_deps() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + [r for extra in meta["optional-dependencies"].values() for r in extra]
    return {_name(r) for r in reqs}


def _environment_deps(path: Path = ROOT / "environment.yml") -> dict[str, str | None]:
    env = yaml.safe_load(path.read_text())
    deps: dict[str, str | None] = {}
    for item in env["dependencies"]:
        if isinstance(item, dict):
            for req in item.get("pip", []):
                if req.startswith("-"):
                    continue
                name = _name(req)
                deps[name] = req.split("==", 1)[1] if "==" in req else None
        else:
            name = CONDA_TO_PYPI.get(_name(item), _name(item))
            if name in {"python", "pip"}:
                continue
            m = re.search(r"(?<![<>!])=+([^=,]+)$", item)
            deps[name] = m.group(1) if m else None
    return deps


def test_notebooks_are_built_from_current_sources():
    assert build_lessons.stale_notebooks() == []


def test_solution_markers_split_cleanly():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert build_lessons.split_solution(src, "solution") == "def f(x):\n    return x"
    assert build_lessons.split_solution(src, "student") == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"


def test_pyproject_and_environment_yml_agree():
    env = _environment_deps()
    assert set(env) == _pyproject_deps(), "environment.yml and pyproject.toml list different packages"
    pins = _pins()
    for name, version in env.items():
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert version == pins[name], f"environment.yml pins {name}={version}, constraints.txt {pins[name]}"


def test_binder_files_agree_with_the_lock():
    """repo2docker reads binder/ alone: the same pinned packages as environment.yml and
    constraints.txt, PyTorch's CPU wheels, and labkit installed by postBuild without deps."""
    binder = _environment_deps(ROOT / "binder" / "environment.yml")
    assert binder == _environment_deps(), "binder/environment.yml and environment.yml list different pins"
    pins = _pins()
    assert all(pins.get(name) == version for name, version in binder.items())
    pip = next(item for item in yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())["dependencies"]
               if isinstance(item, dict))["pip"]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip
    assert "-e ." not in pip  # repo2docker installs this file before the repository is copied in
    for script in ("postBuild", "start"):
        assert os.access(ROOT / "binder" / script, os.X_OK), f"binder/{script} must be executable"
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post and "labkit prebuild" in post


def test_constraints_pin_every_dependency_and_the_cpu_torch():
    pins = _pins()
    assert pins["torch"] == "2.13.0"
    missing = _pyproject_deps() - set(pins)
    assert not missing, f"not pinned: {sorted(missing)}"


def test_readme_syllabus_matches_lessons():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- syllabus:start -->")[1].split("<!-- syllabus:end -->")[0].strip()
    assert block == syllabus.markdown_table(), "README syllabus table is stale: python -m labkit.syllabus"
    names = {lesson.name for lesson in syllabus.LESSONS}
    for source in (ROOT / "lessons").glob("[0-9][0-9]_*.py"):
        assert source.stem in names, f"{source.name} is not in labkit.syllabus"


def test_readme_quickstart_has_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:bash|sh)?\n(.*?)```", quick, flags=re.S)
    lines = [line for block in commands for line in block.strip().splitlines() if line.strip()]
    assert lines == ["make lab", "make test"], lines
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\b", ci, flags=re.M), ".ci/run must call the README's test command"


def test_no_security_footguns_in_labkit():
    for path in (ROOT / "labkit").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"(?<![.\w`])(eval|exec)\(", text), f"eval/exec in {path}"
        assert "pickle.load" not in text, f"pickle in {path}"
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"


@pytest.mark.parametrize("path", sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_lesson_markdown_cells_are_fully_commented(path):
    """A markdown line without its '# ' in a percent-format source silently becomes code (or vanishes)."""
    inside, bad = False, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("# %%"):
            inside = "[markdown]" in line
        elif inside and line.strip() and not line.startswith("#"):
            bad.append(number)
    assert not bad, f"{path.name}: markdown lines without '# ' at {bad}"


@pytest.mark.parametrize("path", sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_widget_cells_are_ignored_by_nbval(path):
    """A widget's view and its Output messages differ run to run: its cell must carry nbval-ignore-output."""
    header, bad = "", []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("# %%"):
            header = line
        elif re.search(r"\w_widget\(", line) and not line.lstrip().startswith("#") and "[markdown]" not in header \
                and "nbval-ignore-output" not in header:
            bad.append(number)
    assert not bad, f"{path.name}: widget cells without the nbval-ignore-output tag at lines {bad}"
