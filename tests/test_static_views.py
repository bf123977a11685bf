"""What a reader without a kernel sees: widget figures stored as images, and the
Colab/Binder header every notebook is generated with."""
from __future__ import annotations

import ast
import subprocess
import sys

import nbformat

import build_lessons
import widget_snapshots
from labkit import syllabus

PNG = "iVBORw0KGgo="  # any base64 string stands in for a figure here


def _widget_notebook(with_figure: bool = True) -> nbformat.NotebookNode:
    """A cell showing a VBox(HBox(slider), Output) as nbclient stores it with store_widget_state=True."""
    outputs = [{"output_type": "display_data", "data": {"image/png": PNG, "text/plain": "<Figure>"}, "metadata": {}}]
    state = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_row", "IPY_MODEL_out"]}},
        "row": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_slider"]}},
        "slider": {"model_name": "FloatSliderModel", "state": {"value": 1.0, "layout": "IPY_MODEL_layout"}},
        "out": {"model_name": "OutputModel", "state": {"outputs": outputs if with_figure else []}},
    }
    cell = nbformat.v4.new_code_cell("widget()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        widget_snapshots.WIDGET_VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(children=(HBox(...), Output()))"})]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell("print(1)")])
    nb.metadata["widgets"] = {widget_snapshots.WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def test_a_widgets_first_figure_is_stored_beside_its_view():
    nb = _widget_notebook()
    assert widget_snapshots.embed(nb) == 1
    data = nb.cells[0].outputs[0]["data"]
    assert data["image/png"] == PNG
    assert widget_snapshots.WIDGET_VIEW in data  # a live kernel still shows the widget itself
    nbformat.validate(nb)


def test_a_widget_without_a_figure_is_left_alone():
    nb = _widget_notebook(with_figure=False)
    assert widget_snapshots.embed(nb) == 0
    assert "image/png" not in nb.cells[0].outputs[0]["data"]
    nb.metadata.pop("widgets")  # no stored state at all
    assert widget_snapshots.embed(nb) == 0


def test_nbval_compares_neither_widget_views_nor_images():
    """Why the stored image keeps nbval green: its comparison skips both (nbval's own list)."""
    import inspect

    from nbval.plugin import IPyNbFile

    source = inspect.getsource(IPyNbFile.__init__)
    assert f"'{widget_snapshots.WIDGET_VIEW}'" in source and "'image/png'" in source


def test_every_notebook_opens_with_badges_and_a_colab_only_setup_cell():
    lesson = next(lesson for lesson in syllabus.LESSONS if lesson.datasets and syllabus.available(lesson))
    for variant, folder in build_lessons.OUTPUTS.items():
        nb = build_lessons.render(build_lessons.LESSONS / f"{lesson.name}.py", variant)
        notice, setup = nb.cells[0], nb.cells[1]
        assert syllabus.colab_url(lesson, folder.name) in notice.source
        assert syllabus.binder_url(lesson, folder.name) in notice.source
        assert setup.metadata["tags"] == ["colab-setup"]
        assert f"git+{syllabus.REPOSITORY_URL}@{syllabus.REPOSITORY_BRANCH}" in setup.source
        assert "-c" not in setup.source.split()  # no lock: Colab's own torch stays
        assert repr(list(lesson.datasets)) in setup.source
        # Everything but `import sys` sits under the Colab test.
        body = ast.parse(setup.source).body
        assert [type(node).__name__ for node in body] == ["Import", "If"]
        assert ast.unparse(body[1].test) == "'google.colab' in sys.modules"
    # Outside Colab it does nothing and prints nothing.
    out = subprocess.run([sys.executable, "-c", setup.source], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == out.stderr == ""
