"""What a click on a chart selected, read from Streamlit's selection state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def grid_cell_from_selection(
    selection: Mapping[str, Any] | None, grid_shape: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """The (layer, head) of the thumbnail picked in `attention_grid`, from Streamlit's selection state.

    Args:
        selection: what `st.plotly_chart(on_select="rerun")` returns, i.e.
            {"selection": {"points": [{"customdata": [layer, head], ...}]}}; a bare
            {"points": [...]} is accepted too.
        grid_shape: (layers, heads), used when a point carries only its index.

    Returns:
        (layer, head) of the first selected point, or None if nothing usable was selected.
    """
    if not selection:
        return None
    try:
        inner = selection.get("selection", selection)
        points = inner.get("points") if inner else None
    except AttributeError:
        return None
    if not points:
        return None
    for point in points:
        if not isinstance(point, Mapping):
            continue
        custom = point.get("customdata")
        if isinstance(custom, Mapping):  # a typed array arrives serialised as {"0": layer, "1": head}
            custom = [custom.get("0", custom.get(0)), custom.get("1", custom.get(1))]
        if isinstance(custom, (list, tuple)) and len(custom) >= 2:
            try:
                layer, head = int(custom[0]), int(custom[1])
            except (TypeError, ValueError):
                continue
            if grid_shape is None or (0 <= layer < grid_shape[0] and 0 <= head < grid_shape[1]):
                return layer, head
            continue
        if grid_shape is None:
            continue
        if point.get("curve_number", point.get("curveNumber", 1)) != 1:
            continue  # not the scatter trace of attention_grid
        index = point.get("point_index", point.get("point_number", point.get("pointIndex", point.get("pointNumber"))))
        if isinstance(index, (list, tuple)) or index is None:
            continue
        try:
            index = int(index)
        except (TypeError, ValueError):
            continue
        n_layers, n_heads = int(grid_shape[0]), int(grid_shape[1])
        if 0 <= index < n_layers * n_heads:
            return divmod(index, n_heads)
    return None


