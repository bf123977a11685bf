"""Build the course notebooks from their single sources in ``lessons/``.

Each ``lessons/NN_name.py`` (jupytext percent format) becomes

- ``notebooks/NN_name.ipynb``: the student version, where every block between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is replaced by a stub, and
- ``solutions/NN_name.ipynb``: the solved version, markers removed,

both executed top to bottom with stored outputs (for nbval).

Usage::

    python tools/build_lessons.py            # build and execute every lesson
    python tools/build_lessons.py 05 09      # only these lessons
    python tools/build_lessons.py --check    # fail if a committed notebook is stale
"""
from __future__ import annotations

import argparse
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jupytext
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import notebook_run  # noqa: E402
import repro_env  # noqa: E402
import widget_snapshots  # noqa: E402

ROOT = repro_env.ROOT
LESSONS = ROOT / "lessons"
OUTPUTS = {"student": ROOT / "notebooks", "solution": ROOT / "solutions"}
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
MARKDOWN_STUB = "*Your answer here.*"
_MARKER = re.compile(r"^(?P<indent>[ \t]*)### (?P<kind>BEGIN|END) SOLUTION[ \t]*$")


def split_solution(source: str, variant: str, markdown: bool = False) -> str:
    """Return ``source`` for ``variant`` ("student" or "solution")."""
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        m = _MARKER.match(line)
        if m and m["kind"] == "BEGIN":
            if inside:
                raise ValueError("nested ### BEGIN SOLUTION")
            inside = True
            if variant == "student":
                stub = MARKDOWN_STUB if markdown else CODE_STUB
                out.extend(m["indent"] + s for s in stub.splitlines())
            continue
        if m and m["kind"] == "END":
            if not inside:
                raise ValueError("### END SOLUTION without BEGIN")
            inside = False
            continue
        if inside and variant == "student":
            continue
        out.append(line)
    if inside:
        raise ValueError("### BEGIN SOLUTION without END")
    return "\n".join(out)


def render(source: Path, variant: str) -> nbformat.NotebookNode:
    """Unexecuted notebook for one lesson source and variant."""
    nb = jupytext.read(source, fmt="py:percent")
    cells = [*header_cells(source, variant)]
    for cell in nb.cells:
        cell.source = split_solution(cell.source, variant, markdown=cell.cell_type == "markdown")
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:03d}"
    out = nbformat.v4.new_notebook(cells=cells)
    out.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "labkit": {"generated_from": f"lessons/{source.name}", "variant": variant},
    }
    nbformat.validate(out)
    return out


def header_cells(source: Path, variant: str) -> list[nbformat.NotebookNode]:
    """What every notebook starts with: where it comes from, Colab and Binder badges,
    and a cell that sets labkit up when (and only when) it runs on Google Colab."""
    from labkit import syllabus

    lesson = syllabus.lesson_for_notebook(source)
    kind = "solved version" if variant == "solution" else "student version"
    text = (f"<small>Generated from `lessons/{source.name}` ({kind}) by `make build`. "
            "Edit the source, not this notebook.</small>")
    if lesson is not None:
        text += "\n\n" + syllabus.badges(lesson, OUTPUTS[variant].name)
    notice = nbformat.v4.new_markdown_cell(text)
    notice.metadata["tags"] = ["generated-notice"]
    if lesson is None:
        return [notice]
    setup = nbformat.v4.new_code_cell(colab_setup_source(lesson))
    setup.metadata["tags"] = ["colab-setup"]
    return [notice, setup]


def colab_setup_source(lesson) -> str:
    """The first code cell: on Colab, install labkit from the repository (no lock, so
    Colab's own PyTorch stays) and fetch the datasets the syllabus says the lesson
    reads; anywhere else it does nothing and prints nothing."""
    from labkit import syllabus

    fetch = (f"\n    from labkit import datasets\n    datasets.fetch_all({list(lesson.datasets)!r})"
             if lesson.datasets else "")
    return (
        "# Google Colab only: install labkit from the course repository and fetch this lesson's data.\n"
        "# On Colab a GPU may be used and numbers differ slightly from the stored outputs (README, GPU).\n"
        "import sys\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import subprocess\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\",\n"
        f"                    \"labkit @ git+{syllabus.REPOSITORY_URL}@{syllabus.REPOSITORY_BRANCH}\"], check=True)"
        + fetch
    )


def execute(nb: nbformat.NotebookNode, cwd: Path, name: str) -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh kernel under the reproducible environment, every cell
    bounded and a stalled run retried once (tools/notebook_run.py).

    Each widget's first figure is stored as an image beside its view, so a
    reader without a kernel (GitHub, nbviewer, the course site) sees the plot;
    the widget state itself is dropped, since its random model ids would change
    the notebook on every build (tools/widget_snapshots.py)."""
    repro_env.apply()
    run, _ = notebook_run.execute(nb, cwd, name=name, record_timing=False, store_widget_state=True)
    widget_snapshots.embed(run)
    run.metadata.pop("widgets", None)
    return run


def coalesce_streams(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Merge consecutive stdout (or stderr) outputs of a cell into one.

    How the kernel chunks a cell's printing depends on timing (a loaded machine
    flushes mid-cell), so stored notebooks would change from build to build
    with the same text."""
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                    and merged[-1].get("name") == out.get("name")):
                merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(out["text"])
            else:
                merged.append(out)
        if "outputs" in cell:
            cell["outputs"] = merged
    return nb


def build_one(source: Path, run: bool = True) -> list[str]:
    written = []
    for variant, folder in OUTPUTS.items():
        nb = render(source, variant)
        if run:
            nb = coalesce_streams(execute(nb, folder, f"{folder.name}/{source.stem}.ipynb"))
        path = folder / f"{source.stem}.ipynb"
        tmp = path.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(path)
        written.append(str(path.relative_to(ROOT)))
    return written


def sources(selected: list[str] | None = None) -> list[Path]:
    found = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if selected:
        found = [p for p in found if any(p.stem.startswith(s) for s in selected)]
    return found


def stale_notebooks() -> list[str]:
    """Committed notebooks whose cells differ from what their source renders."""
    problems = []
    for source in sources():
        for variant, folder in OUTPUTS.items():
            path = folder / f"{source.stem}.ipynb"
            if not path.exists():
                problems.append(f"{path.relative_to(ROOT)} is missing")
                continue
            want = render(source, variant)
            have = nbformat.read(path, as_version=4)
            key = lambda nb: [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]  # noqa: E731
            if key(want) != key(have):
                problems.append(f"{path.relative_to(ROOT)} is stale: run `make build` (lesson {source.stem})")
            elif any(c.cell_type == "code" and c.source.strip() and c.execution_count is None for c in have.cells):
                problems.append(f"{path.relative_to(ROOT)} has unexecuted cells: run `make build`")
    for folder in OUTPUTS.values():
        for path in folder.glob("*.ipynb"):
            if not (LESSONS / f"{path.stem}.py").exists():
                problems.append(f"{path.relative_to(ROOT)} has no source in lessons/")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="lesson numbers or name prefixes (default: all)")
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    parser.add_argument("--no-execute", action="store_true", help="write notebooks without running them")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="lessons built in parallel")
    parser.add_argument("--no-prebuild", action="store_true",
                        help="skip training the course models (they must be cached: a missing one trains inside a cell)")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_notebooks()
        print("\n".join(problems) or "all notebooks are up to date")
        return 1 if problems else 0
    todo = sources(args.lessons)
    if not todo:
        parser.error(f"no lesson matches {args.lessons}")
    repro_env.apply()
    if not args.no_execute and not args.no_prebuild:
        notebook_run.train_course_models(ROOT)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for written in pool.map(build_one, todo, [not args.no_execute] * len(todo)):
            print("wrote", " and ".join(written), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
