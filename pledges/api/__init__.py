"""The JSON API: flask-smorest blueprints, one per resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

View = Callable[..., Any]


def documented(*decorators: Callable[[View], View]) -> Callable[[View], View]:
    """flask-smorest's response decorators, kept for the OpenAPI document only.

    For a view that builds its own Response.

    Each of them also wraps the view in a layer that, for such a view, only passes the
    Response on: three layers on the totals route, which is read thousands of times a
    second on the night (bench/RESULTS.md). The view keeps what they document, not the layers.
    """

    def decorate(view: View) -> View:
        wrapped = view
        for decorator in reversed(decorators):
            wrapped = decorator(wrapped)
        view._apidoc = wrapped._apidoc  # type: ignore[attr-defined]  # what flask-smorest's route reads
        return view

    return decorate
