"""Widgets in a static view: store each widget's first figure as an image beside it.

A widget's output is a ``application/vnd.jupyter.widget-view+json`` reference
to a model that only a live kernel (or stored widget state plus JavaScript)
can draw; GitHub, nbviewer and the course site show its ``text/plain``
fallback, ``VBox(children=...)``. Every course widget draws its figure into an
``Output`` widget inside the box (labkit/ui.py), and nbclient, run with
``store_widget_state=True``, records that figure in the notebook's widget state.
:func:`embed` copies it into the widget's own output as ``image/png``:

- a static renderer shows the image (it ranks ``image/png`` above ``text/plain``);
- JupyterLab with a kernel still shows the live widget (its widget view ranks first);
- nbval compares neither widget views nor images, so stored outputs stay
  comparable (and the lessons' widget cells are ``nbval-ignore-output`` anyway).

The widget state is then dropped by the build: its model ids are random, so
keeping it would change every notebook on every build.
"""
from __future__ import annotations

from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_REF = "IPY_MODEL_"


def _children(state: dict[str, Any]) -> list[str]:
    """Model ids a container's state refers to (children, and any single model reference)."""
    refs = []
    for value in state.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.startswith(_REF):
                refs.append(item[len(_REF):])
    return refs


def first_image(models: dict[str, dict], model_id: str) -> str | None:
    """The first ``image/png`` any Output widget under ``model_id`` holds, depth first."""
    seen: set[str] = set()
    stack = [model_id]
    while stack:
        mid = stack.pop(0)
        if mid in seen or mid not in models:
            continue
        seen.add(mid)
        state = models[mid].get("state", {})
        for out in state.get("outputs", []) if models[mid].get("model_name") == "OutputModel" else []:
            png = out.get("data", {}).get("image/png")
            if png:
                return png
        stack[:0] = _children(state)
    return None


def embed(nb) -> int:
    """Add each widget's first figure to its output as ``image/png``; return how many were added."""
    models = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    added = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if not view:
                continue
            png = first_image(models, view.get("model_id", ""))
            if png:
                out["data"]["image/png"] = png
                added += 1
    return added
