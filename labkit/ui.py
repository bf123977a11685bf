"""Interactive figures for the lessons.

Every widget in the course is built the same way: a pure ``draw(**values)``
function that returns a matplotlib ``Figure``, and ipywidgets controls whose
ranges only admit valid values. :func:`interactive_figure` wires them
together. Each lesson's widget is built by one function of its topic module
(``<figure>_widget``, beside the ``plot_<figure>`` it redraws), which the
lesson displays and its test drives over every control's full range.
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np


def float_slider(description: str, min: float, max: float, step: float, value: float, **kw: Any) -> widgets.FloatSlider:
    """A float slider that updates on release (plots redraw once per move)."""
    return widgets.FloatSlider(
        description=description, min=min, max=max, step=step, value=value,
        continuous_update=False, style={"description_width": "initial"}, **kw,
    )


def int_slider(description: str, min: int, max: int, value: int, step: int = 1, **kw: Any) -> widgets.IntSlider:
    """An integer slider that updates on release."""
    return widgets.IntSlider(
        description=description, min=min, max=max, step=step, value=value,
        continuous_update=False, style={"description_width": "initial"}, **kw,
    )


def dropdown(description: str, options: list, value: Any = None, **kw: Any) -> widgets.Dropdown:
    return widgets.Dropdown(
        description=description, options=options, value=options[0] if value is None else value,
        style={"description_width": "initial"}, **kw,
    )


def checkbox(description: str, value: bool = True, **kw: Any) -> widgets.Checkbox:
    """A checkbox that switches one option on or off."""
    return widgets.Checkbox(description=description, value=value, **kw)


def text_box(description: str, value: str = "", **kw: Any) -> widgets.Text:
    """A one-line text box that updates on Enter or when it loses focus."""
    return widgets.Text(description=description, value=value, continuous_update=False, **kw)


def interactive_figure(draw: Callable[..., plt.Figure], **controls: widgets.ValueWidget) -> widgets.VBox:
    """Return a widget that redraws ``draw(**values)`` whenever a control moves.

    The returned box carries ``.draw`` and ``.controls`` so tests can call the
    callback directly over each control's range.
    """
    output = widgets.Output()

    def redraw(_change: Any = None) -> None:
        values = {name: ctl.value for name, ctl in controls.items()}
        with output:
            output.clear_output(wait=True)
            fig = draw(**values)
            plt.show()
            plt.close(fig)

    for ctl in controls.values():
        ctl.observe(redraw, names="value")
    box = widgets.VBox([widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")), output])
    box.draw = draw  # type: ignore[attr-defined]
    box.controls = controls  # type: ignore[attr-defined]
    redraw()
    return box


def figure_is_finite(fig: plt.Figure) -> bool:
    """True when every line, collection and image in ``fig`` holds finite data."""
    for ax in fig.axes:
        for line in ax.get_lines():
            if not np.all(np.isfinite(np.asarray(line.get_ydata(), dtype=float))):
                return False
        for coll in ax.collections:
            offsets = np.asarray(coll.get_offsets(), dtype=float)
            if offsets.size and not np.all(np.isfinite(offsets)):
                return False
        for img in ax.get_images():
            arr = np.ma.masked_invalid(np.asarray(img.get_array(), dtype=float))
            if arr.count() == 0:
                return False
        for patch in ax.patches:
            if not np.all(np.isfinite([patch.get_height() if hasattr(patch, "get_height") else 0.0])):
                return False
    return True


__all__ = ["float_slider", "int_slider", "dropdown", "checkbox", "text_box", "interactive_figure", "figure_is_finite"]
