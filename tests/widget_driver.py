"""Drive a lesson's widget (an :func:`labkit.ui.interactive_figure`) over its controls' full ranges.

Tests build the widget with the same ``<module>.<figure>_widget(...)`` call as
the lesson, so the controls driven here are the ones students see.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from hypothesis import strategies as st

from labkit.ui import figure_is_finite


def control_strategy(ctl: widgets.Widget) -> st.SearchStrategy:
    """Every value a student can select with ``ctl``."""
    if isinstance(ctl, (widgets.FloatSlider, widgets.BoundedFloatText)):
        n = int(round((ctl.max - ctl.min) / ctl.step))
        return st.integers(0, n).map(lambda i: min(ctl.max, round(ctl.min + i * ctl.step, 10)))
    if isinstance(ctl, (widgets.IntSlider, widgets.BoundedIntText)):
        return st.integers(0, (ctl.max - ctl.min) // ctl.step).map(lambda i: ctl.min + i * ctl.step)
    if isinstance(ctl, (widgets.Dropdown, widgets.ToggleButtons, widgets.SelectionSlider, widgets.RadioButtons)):
        return st.sampled_from([opt[1] if isinstance(opt, tuple) else opt for opt in ctl.options])
    if isinstance(ctl, (widgets.Checkbox, widgets.ToggleButton)):
        return st.booleans()
    if isinstance(ctl, widgets.FloatRangeSlider):
        return st.tuples(st.floats(ctl.min, ctl.max), st.floats(ctl.min, ctl.max)).map(lambda t: tuple(sorted(t)))
    if isinstance(ctl, widgets.IntRangeSlider):
        return st.tuples(st.integers(ctl.min, ctl.max), st.integers(ctl.min, ctl.max)).map(lambda t: tuple(sorted(t)))
    if isinstance(ctl, widgets.Text):
        return st.text(max_size=200)
    raise TypeError(f"no strategy for control {type(ctl).__name__}")


def values_strategy(widget, **fixed) -> st.SearchStrategy:
    """Every combination of control values; the controls named in ``fixed`` keep the given value."""
    unknown = set(fixed) - set(widget.controls)
    assert not unknown, f"no controls named {sorted(unknown)}"
    return st.fixed_dictionaries({name: st.just(fixed[name]) if name in fixed else control_strategy(ctl)
                                  for name, ctl in widget.controls.items()})


def draw_and_check(widget, values: dict) -> None:
    """Call the widget's draw callback and assert it made a finite figure."""
    fig = widget.draw(**values)
    try:
        assert isinstance(fig, plt.Figure), f"draw returned {type(fig).__name__}, not a Figure"
        assert figure_is_finite(fig), f"NaN or inf in the figure for {values}"
    finally:
        plt.close(fig)
