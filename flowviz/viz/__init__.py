"""Figures: pure functions from arrays to plotly figures."""

from .figures import (
    clouds_fig,
    curves_fig,
    field_fig,
    heatmap_fig,
    loss_fig,
    pair_lines_fig,
    probe_fig,
    quality_vs_nfe_fig,
    scatter,
    trajectories_fig,
)
from .shortcut import clouds_grid_fig, consistency_fig, family_fig, step_colors
from .style import (
    METHOD_COLORS,
    SEQ,
    SOURCE,
    TARGET,
    base,
    format_distance,
    log_axis,
    method_color,
    method_of,
)

__all__ = [
    "METHOD_COLORS", "SEQ", "SOURCE", "TARGET", "base", "clouds_fig", "clouds_grid_fig",
    "consistency_fig", "curves_fig", "family_fig", "field_fig", "format_distance",
    "heatmap_fig", "log_axis", "loss_fig", "method_color", "method_of", "pair_lines_fig",
    "probe_fig", "quality_vs_nfe_fig", "scatter", "step_colors", "trajectories_fig",
]
