"""The one visual language: a method's colour from its name, decade log axes, noise floors."""

import numpy as np

from flowviz.viz import curves_fig, quality_vs_nfe_fig
from flowviz.viz.style import (
    METHOD_COLORS,
    decade_label,
    decade_ticks,
    format_distance,
    method_of,
)


def test_method_from_label_not_order():
    labels = {"exact v*": "exact", "1-RF, independent, w128 · 1000 steps": "1-RF",
              "1-RF, minibatch OT": "OT", "2-RF": "2-RF", "3-RF": "3-RF",
              "2-RF + distill": "distilled", "Shortcut, 4 steps": "Shortcut",
              "MeanFlow, one jump": "MeanFlow", "exact VP PF-ODE": "diffusion",
              "plain FM, same time": "1-RF", "temperature": None}
    assert {k: method_of(k) for k in labels} == labels
    a = curves_fig({"MeanFlow": ([1], [1]), "Shortcut": ([1], [1])})
    b = curves_fig({"Shortcut": ([1], [1]), "2-RF": ([1], [1]), "MeanFlow": ([1], [1])})
    ca, cb = ({t.name: t.line.color for t in fig.data} for fig in (a, b))
    assert ca["MeanFlow"] == cb["MeanFlow"] == METHOD_COLORS["MeanFlow"]
    assert ca["Shortcut"] == cb["Shortcut"] == METHOD_COLORS["Shortcut"]
    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)


def test_same_method_twice_differs_in_dash():
    fig = curves_fig({"1-RF, w64": ([1], [1]), "1-RF, w128": ([1], [1])})
    assert fig.data[0].line.color == fig.data[1].line.color
    assert fig.data[0].line.dash != fig.data[1].line.dash


def test_decades():
    assert decade_ticks(1e-4, 0.3) == [1e-4, 1e-3, 1e-2, 1e-1]
    assert len(decade_ticks(0.002, 0.009)) >= 2  # a short range still gets two labels
    assert decade_ticks(2e-4, 2.4e-3) == [2e-4, 5e-4, 1e-3, 2e-3]  # one decade tick inside
    assert decade_ticks(0.0021, 0.0029) == [0.002, 0.005]  # none inside: the two around it
    assert [decade_label(v) for v in (1e-3, 2e-3, 0.1, 1, 20)] == ["10⁻³", "2×10⁻³", "0.1",
                                                                    "1", "20"]


def test_below_noise_is_never_a_bare_negative():
    assert format_distance(-0.0013, 0.001) == "≤ noise (-0.0013)"
    assert format_distance(0.0007, 0.001).startswith("≤ noise")
    assert format_distance(0.02, 0.001) == "0.0200"
    fig = quality_vs_nfe_fig({"exact v*": ([1, 2, 4], [0.1, 0.002, -0.0013])}, floor=0.001)
    y = np.asarray(fig.data[0].y, float)
    assert (y > 0).all() and y[-1] == 0.001 / 4  # on the band's lower edge, not off the chart
    assert fig.data[0].text[-1] == "≤ noise (-0.0013)"
    assert fig.layout.yaxis.type == "log" and "10⁻²" in fig.layout.yaxis.ticktext
