"""A server-side SVG choropleth of the neighborhoods, shaded by their pledges."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from flask_babel import format_number, gettext, ngettext
from markupsafe import Markup, escape

# Shade 0 is "no pledges"; 1..SHADES step up by share of the busiest mapped neighborhood.
SHADES = 5
SHADE_CLASSES = tuple(f"map-shade-{level}" for level in range(SHADES + 1))
MAP_WIDTH = 1000.0  # the longer side of the viewBox, in user units
PADDING = 4.0  # room for the border strokes at the edges

_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
# XML 1.0 forbids these even when escaped; names come from imported files.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

Ring = list[tuple[float, float]]


class Mappable(Protocol):
    """A Neighborhood row, or anything else with its three fields."""

    @property
    def slug(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def boundary(self) -> dict[str, Any] | None: ...


def _text(value: str) -> Markup:
    return escape(_CONTROL.sub("", value))


def _polygons(boundary: dict[str, Any] | None) -> list[list[Ring]]:
    """The geometry's polygons as lists of (lon, lat) rings; anything unreadable is left out."""
    if not isinstance(boundary, dict):
        return []
    coordinates = boundary.get("coordinates") or []
    polygons = {"Polygon": [coordinates], "MultiPolygon": coordinates}.get(boundary.get("type"), [])
    readable = []
    for polygon in polygons:
        rings = []
        for ring in polygon or []:
            try:
                points = [(float(p[0]), float(p[1])) for p in ring]
            except (TypeError, ValueError, IndexError):
                continue
            if all(math.isfinite(c) for point in points for c in point):
                rings.append(points)
        if rings:
            readable.append(rings)
    return readable


def _number(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _ring_path(points: Iterable[tuple[float, float]]) -> str | None:
    """An SVG subpath for one ring, or None when rounding leaves it without area."""
    kept: list[tuple[str, str]] = []
    corners: list[tuple[float, float]] = []
    for x, y in points:
        rounded = (_number(x), _number(y))
        if not kept or rounded != kept[-1]:
            kept.append(rounded)
            corners.append((float(rounded[0]), float(rounded[1])))
    if len(kept) > 1 and kept[0] == kept[-1]:
        kept.pop()
        corners.pop()
    twice_area = sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True)
    )
    if len(kept) < 3 or twice_area == 0:
        return None
    head, *rest = kept
    return f"M{head[0]} {head[1]}L" + " ".join(f"{x} {y}" for x, y in rest) + "Z"


def _shade(total: int, busiest: int) -> int:
    if total <= 0 or busiest <= 0:
        return 0
    return min(SHADES, max(1, math.ceil(SHADES * total / busiest)))


def _pledges(name: str, pledges: int) -> str:
    return ngettext(
        "%(name)s: %(count)s pledge",
        "%(name)s: %(count)s pledges",
        pledges,
        name=name,
        count=format_number(pledges),
    )


def _description(shown: list[tuple[str, int]], unmapped: int) -> str:
    sentences = [
        ngettext(
            "A map of %(count)s neighborhood, shaded darker where there are more pledges.",
            "A map of %(count)s neighborhoods, shaded darker where there are more pledges.",
            len(shown),
            count=format_number(len(shown)),
        )
    ]
    leader, most = max(shown, key=lambda item: item[1])
    if most > 0:
        sentences.append(
            ngettext(
                "%(name)s has the most, with %(count)s pledge.",
                "%(name)s has the most, with %(count)s pledges.",
                most,
                name=leader,
                count=format_number(most),
            )
        )
    else:
        sentences.append(gettext("No neighborhood has a pledge yet."))
    if unmapped:
        sentences.append(
            ngettext(
                "%(count)s more neighborhood has no boundary and is not drawn.",
                "%(count)s more neighborhoods have no boundary and are not drawn.",
                unmapped,
                count=format_number(unmapped),
            )
        )
    return " ".join(sentences)


def neighborhood_map(
    neighborhoods: Sequence[Mappable],
    totals: dict[str, Any],
    *,
    title: str | None = None,
    id_prefix: str = "map",
) -> Markup | None:
    """The neighborhoods as an accessible SVG choropleth, or None when none has a boundary to draw.

    Needs an app or request context: its words go through flask-babel.
    """
    if not _ID.match(id_prefix):
        raise ValueError(f"id_prefix must be a valid HTML id start, not {id_prefix!r}")
    shapes = [(n, _polygons(n.boundary)) for n in neighborhoods]
    points = [p for _, polygons in shapes for polygon in polygons for ring in polygon for p in ring]
    if not points:
        return None

    lons, lats = [p[0] for p in points], [p[1] for p in points]
    # Equirectangular, squeezed by the cosine of the middle latitude so shapes keep their proportions.
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span = max((max(lons) - min(lons)) * squeeze, max(lats) - min(lats)) or 1.0
    scale = MAP_WIDTH / span
    west, north = min(lons), max(lats)

    def project(lon: float, lat: float) -> tuple[float, float]:
        return PADDING + (lon - west) * squeeze * scale, PADDING + (north - lat) * scale

    counts = {row["slug"]: int(row["total"]) for row in totals.get("neighborhoods", [])}
    drawn: list[tuple[Mappable, str]] = []
    for neighborhood, polygons in shapes:
        subpaths = [_ring_path(project(*p) for p in ring) for polygon in polygons for ring in polygon]
        path = "".join(s for s in subpaths if s)
        if path:
            drawn.append((neighborhood, path))
    if not drawn:
        return None

    busiest = max(counts.get(n.slug, 0) for n, _ in drawn)
    paths = []
    for neighborhood, path in drawn:
        count = counts.get(neighborhood.slug, 0)
        shade, label = SHADE_CLASSES[_shade(count, busiest)], _text(_pledges(neighborhood.name, count))
        paths.append(
            f'<path class="{shade}" data-slug="{_text(neighborhood.slug)}" fill-rule="evenodd"'
            f' d="{path}"><title>{label}</title></path>'
        )
    width = _number(2 * PADDING + (max(lons) - west) * squeeze * scale)
    height = _number(2 * PADDING + (north - min(lats)) * scale)
    description = _description(
        [(n.name, counts.get(n.slug, 0)) for n, _ in drawn], len(neighborhoods) - len(drawn)
    )
    heading = title if title is not None else gettext("Pledges by neighborhood")
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="neighborhood-map" viewBox="0 0 {width} {height}"'
        f' role="img" aria-labelledby="{id_prefix}-title {id_prefix}-desc">'
        f'<title id="{id_prefix}-title">{_text(heading)}</title>'
        f'<desc id="{id_prefix}-desc">{_text(description)}</desc>' + "".join(paths) + "</svg>"
    )
