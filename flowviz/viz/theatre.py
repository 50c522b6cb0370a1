"""The flow theatre drawn: a player that moves every method's points from the same noise in the
browser (play, pause, a time slider: no server round trip per frame), a GIF of it, and one
particle followed under every method (plotly)."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import plotly.graph_objects as go

from ..theatre import Particle, positions, visited
from .style import FONT, OTHER, method_color, template

FRAME_MS = 40  # the GIF's frame duration (25 frames/s)
IN_FLIGHT = 0.45  # opacity of points between two states the sampler computed (a drawing)
PLAY_S = 3.0  # seconds the player takes from t = 0 to t = 1


def _layout(flights: dict, overlay: bool) -> tuple[int, int]:
    n = 1 if overlay else len(flights)
    cols = min(3, n)
    return math.ceil(n / cols), cols


def _b64(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()


def theatre_html(flights: dict, times: np.ndarray, overlay: bool = False, data=None,
                 lim: float = 3.0, panel: int = 290, font: int = 14) -> str:
    """The HTML page of the theatre player: the same noise under every flight, one SVG
    panel per method (or one ``overlay`` panel), played, paused and scrubbed in the browser.

    The page carries each flight's visited states only (ts, xs); the browser places the points
    at any t by moving them straight between two states (as flowviz.theatre.positions), so
    playback is as smooth as the screen. Points are solid at a state their sampler computed
    and faint in between. The slider steps through ``times`` (every visited state is one).
    Clicking a point rings the same noise point in every panel. ``data``: drawn faintly.
    ``panel``: the largest panel side in px (panels shrink to fit a narrower frame)."""
    cols = _layout(flights, overlay)[1]
    spec = {"lim": lim, "times": [round(float(t), 6) for t in times], "overlay": overlay,
            "play_s": PLAY_S, "faint": IN_FLIGHT,
            "data": _b64(np.asarray(data)) if data is not None else "",
            "methods": [{"key": k, "label": f.label, "how": f.how, "color": method_color(f.label),
                         "ts": [float(t) for t in f.ts], "n": int(f.xs.shape[1]),
                         "xs": _b64(f.xs.detach().cpu().numpy())} for k, f in flights.items()]}
    return (_PLAYER.replace("__SPEC__", json.dumps(spec)).replace("__PANEL__", str(panel))
            .replace("__COLS__", str(cols)).replace("__FONT__", str(font)))


_PLAYER = """<!doctype html><html><head><meta charset="utf-8"><style>
body { margin: 0; font: __FONT__px Inter, "Segoe UI", Helvetica, Arial, sans-serif;
       color: #1f2937; }
.bar { display: flex; align-items: center; gap: 12px; margin: 4px 0 8px; }
button { font: inherit; padding: 4px 14px; border: 1px solid #d1d5db; border-radius: 6px;
         background: #fff; cursor: pointer; }
#t { flex: 1; } #clock { font-weight: 700; min-width: 5.5em; } #sel { color: #4b5563; }
.grid { display: grid; grid-template-columns: repeat(__COLS__, minmax(0, __PANEL__px));
        gap: 6px 18px; }
.title { text-align: center; color: #4b5563; white-space: nowrap; overflow: hidden;
         text-overflow: ellipsis; }
.stage { position: relative; width: 100%; aspect-ratio: 1; border: 1px solid #e5e7eb; }
svg { position: absolute; inset: 0; width: 100%; height: 100%; }
svg.moving { will-change: transform; }
path.pts { cursor: pointer; }
</style></head><body><div class="bar"><button id="play">&#9654; Play</button>
<input id="t" type="range" min="0" value="0" step="1"><span id="clock">t = 0.00</span>
<span id="sel"></span></div><div class="grid" id="grid"></div><script>
const S = __SPEC__;
const NS = "http://www.w3.org/2000/svg", L = S.lim;
const f32 = b => new Float32Array(Uint8Array.from(atob(b), c => c.charCodeAt(0)).buffer);
const grid = document.getElementById("grid"), slider = document.getElementById("t");
const clock = document.getElementById("clock"), playB = document.getElementById("play");
slider.max = S.times.length - 1;
// a panel: the data faint in a static layer under a layer of its own for the moving points
// (will-change), so a frame repaints the points only
function layer(stage) {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `${-L} ${-L} ${2 * L} ${2 * L}`);
  const g = document.createElementNS(NS, "g");
  g.setAttribute("transform", "scale(1,-1)");
  svg.appendChild(g); stage.appendChild(svg);
  return g;
}
function panel(title) {
  const div = document.createElement("div");
  div.innerHTML = '<div class="title"></div><div class="stage"></div>';
  div.firstChild.textContent = title;
  grid.appendChild(div);
  const under = layer(div.lastChild), over = layer(div.lastChild);
  over.parentNode.classList.add("moving");
  if (S.data) {
    const d = f32(S.data), dots = document.createElementNS(NS, "path");
    let p = "";
    for (let i = 0; i < d.length; i += 2) p += `M${d[i].toFixed(3)} ${d[i + 1].toFixed(3)}h0`;
    dots.setAttribute("d", p); dots.setAttribute("stroke", "#6B7280");
    dots.setAttribute("stroke-opacity", 0.22); dots.setAttribute("stroke-width", 0.036);
    dots.setAttribute("stroke-linecap", "round"); under.appendChild(dots);
  }
  return over;
}
function dot(g, x, y, r, color, opacity) {
  const c = document.createElementNS(NS, "circle");
  c.setAttribute("cx", x); c.setAttribute("cy", y); c.setAttribute("r", r);
  c.setAttribute("fill", color);
  if (opacity < 1) c.setAttribute("fill-opacity", opacity);
  g.appendChild(c); return c;
}
const shared = S.overlay ? panel(S.methods.map(m => m.label).join(" · ")) : null;
// one <path> per method, a zero-length round-capped segment per point: one attribute written
// per method and frame. With the data in a static layer (panel) playback went from 6-9 to
// 41-49 frames/s against 400 <circle>s each (6 x 400 points, headless Chromium, 2 busy cores)
const M = S.methods.map(m => {
  const g = shared || panel(`${m.label} · ${m.how}`);
  const path = document.createElementNS(NS, "path");
  path.setAttribute("data-method", m.key); path.setAttribute("class", "pts");
  path.setAttribute("stroke", m.color); path.setAttribute("stroke-width", 0.075);
  path.setAttribute("stroke-linecap", "round"); path.setAttribute("fill", "none");
  g.appendChild(path);
  const ring = dot(g, 0, 0, 0.09, "none", 1);
  ring.setAttribute("class", "sel"); ring.setAttribute("stroke-width", 0.03);
  ring.style.display = "none";
  g.addEventListener("click", e => select(nearestPoint(g, e)));
  return {...m, g, path, ring, xs: f32(m.xs), now: new Float32Array(2 * m.n)};
});
let t = 0, playing = false, t0 = 0, sel = null;
window.theatre = {drawn: 0, t: () => t, spec: S, sel: () => sel};
function draw(tt) {
  t = Math.min(Math.max(tt, 0), 1);
  for (const m of M) {
    const ts = m.ts, S1 = ts.length - 1, tc = Math.min(Math.max(t, ts[0]), ts[S1]);
    let j = 0;
    while (j < S1 - 1 && ts[j + 1] <= tc) j++;
    const w = (tc - ts[j]) / (ts[j + 1] - ts[j]), a = j * 2 * m.n, b = a + 2 * m.n;
    let d = "";
    for (let k = 0; k < 2 * m.n; k++) m.now[k] = (1 - w) * m.xs[a + k] + w * m.xs[b + k];
    for (let i = 0; i < m.n; i++)
      d += `M${m.now[2 * i].toFixed(3)} ${m.now[2 * i + 1].toFixed(3)}h0`;
    m.path.setAttribute("d", d);
    const solid = ts.some(s => Math.abs(s - tc) < 1e-4);
    m.path.setAttribute("stroke-opacity", solid ? 1 : S.faint);
    if (sel !== null) {
      m.ring.setAttribute("cx", m.now[2 * sel]); m.ring.setAttribute("cy", m.now[2 * sel + 1]);
    }
  }
  clock.textContent = `t = ${t.toFixed(2)}`;
  window.theatre.drawn++;
}
function nearestPoint(g, e) {  // the point of this panel under the mouse
  const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(g.getScreenCTM().inverse());
  const m = M.find(m => m.g === g && m.path === e.target) || M.find(m => m.g === g);
  let best = 0, bd = Infinity;
  for (let i = 0; i < m.n; i++) {
    const d = (m.now[2 * i] - p.x) ** 2 + (m.now[2 * i + 1] - p.y) ** 2;
    if (d < bd) { bd = d; best = i; }
  }
  return best;
}
function nearest(tt) {
  let best = 0;
  S.times.forEach((s, i) => { if (Math.abs(s - tt) < Math.abs(S.times[best] - tt)) best = i; });
  return best;
}
function tick(now) {
  if (!playing) return;
  const tt = (now - t0) / (S.play_s * 1000);
  draw(tt); slider.value = nearest(t);
  if (tt >= 1) pause(); else requestAnimationFrame(tick);
}
function play() {
  if (t >= 1) t = 0;
  playing = true; playB.innerHTML = "&#10074;&#10074; Pause";
  t0 = performance.now() - t * S.play_s * 1000; requestAnimationFrame(tick);
}
function pause() { playing = false; playB.innerHTML = "&#9654; Play"; }
function select(i) {
  sel = i;
  for (const m of M) {
    m.ring.setAttribute("stroke", "#111827"); m.ring.style.display = "";
  }
  draw(t);
  document.getElementById("sel").textContent =
    `noise point ${i}: ringed in every panel (type it under "Follow one particle")`;
}
playB.addEventListener("click", () => playing ? pause() : play());
slider.addEventListener("input", () => { pause(); draw(S.times[+slider.value]); });
draw(0);
</script></body></html>"""


def particle_fig(particles: dict[str, Particle], labels: dict[str, str], t: float,
                 data=None, lim: float = 3.0, density=None, height: int = 520) -> go.Figure:
    """One noise point under every method: the visited states joined (its path), where it is
    at t (a dot), its tangent there (an arrow), its chord to its endpoint (dotted) and, for
    Shortcut and MeanFlow, the jump the model would make from there (dashed).
    ``density``: (grid, p) of the exact p_t, shaded underneath."""
    fig = go.Figure()
    if density is not None:
        g, p = density
        fig.add_trace(go.Heatmap(x=g, y=g, z=p, colorscale="Greys", showscale=False,
                                 opacity=0.5, hoverinfo="skip"))
    if data is not None:
        d = np.asarray(data)
        fig.add_trace(go.Scatter(x=d[:, 0], y=d[:, 1], mode="markers", name="data",
                                 hoverinfo="skip", marker=dict(size=3, color=OTHER, opacity=0.2)))
    scale = 0.25  # the tangent arrow: v over a quarter of the time
    for key, p in particles.items():
        c, name = method_color(labels[key]), labels[key]
        fig.add_trace(go.Scatter(x=p.path[:, 0], y=p.path[:, 1], mode="lines+markers",
                                 name=name, legendgroup=key, line=dict(color=c, width=2),
                                 marker=dict(size=5, color=c)))
        fig.add_trace(go.Scatter(x=[p.x[0], p.end[0]], y=[p.x[1], p.end[1]], mode="lines",
                                 legendgroup=key, showlegend=False, hoverinfo="skip",
                                 line=dict(color=c, width=1, dash="dot")))
        if p.jump is not None:
            fig.add_trace(go.Scatter(x=[p.x[0], p.jump[0]], y=[p.x[1], p.jump[1]],
                                     mode="lines+markers", legendgroup=key, showlegend=False,
                                     name=f"{name} jump", line=dict(color=c, width=2, dash="dash"),
                                     marker=dict(symbol="x", size=9, color=c)))
        fig.add_annotation(x=p.x[0] + scale * p.tangent[0], y=p.x[1] + scale * p.tangent[1],
                           ax=p.x[0], ay=p.x[1], xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=2, arrowwidth=2, arrowcolor=c, text="")
        fig.add_trace(go.Scatter(x=[p.x[0]], y=[p.x[1]], mode="markers", legendgroup=key,
                                 showlegend=False, marker=dict(size=11, color=c,
                                                               line=dict(color="white", width=1))))
    fig.update_layout(template=template(), font=FONT, height=height,
                      title=dict(text=f"One noise point under every method, at t = {t:.2f}",
                                 x=0.01, font=dict(size=17)),
                      margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="v", x=1.01, y=1, xanchor="left"))
    fig.update_xaxes(range=[-lim, lim], zeroline=False, constrain="domain")
    fig.update_yaxes(range=[-lim, lim], zeroline=False, scaleanchor="x", scaleratio=1,
                     constrain="domain")
    return fig


def theatre_gif(flights: dict, times: np.ndarray, data=None, lim: float = 3.0,
                panel: int = 260, frame_ms: int = FRAME_MS, hold_ms: int = 1500) -> bytes:
    """The theatre as an animated GIF: one panel per method in its colour, one frame per time
    (matplotlib draws, Pillow encodes, as flowviz.viz.animate does for one flow)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    rows, cols = _layout(flights, False)
    fig = Figure(figsize=(cols * panel / 100, rows * panel / 100 + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    dots, seen = [], []
    for j, f in enumerate(flights.values()):
        ax = fig.add_subplot(rows, cols, j + 1)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"{f.label}\n{f.how}", fontsize=9, color="#374151")
        if data is not None:
            d = np.asarray(data)
            ax.scatter(d[:, 0], d[:, 1], s=2, c=OTHER, alpha=0.2, lw=0)
        p = positions(f, times)
        dots.append((ax.scatter(p[0, :, 0], p[0, :, 1], s=5, c=method_color(f.label), lw=0), p))
        seen.append(visited(f, times))
    clock = fig.text(0.01, 0.99, "", fontsize=13, fontweight="bold", va="top")
    fig.tight_layout(rect=(0, 0, 1, 0.95), h_pad=2.0)
    frames = []
    for i, t in enumerate(times):
        for (dot, p), v in zip(dots, seen, strict=True):
            dot.set_offsets(p[i])
            dot.set_alpha(1.0 if v[i] else IN_FLIGHT)
        clock.set_text(f"t = {t:.2f}")
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
        frames.append(Image.fromarray(rgb).quantize(colors=64, method=Image.Quantize.MEDIANCUT))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=[frame_ms] * (len(frames) - 1) + [hold_ms], disposal=1)
    return buf.getvalue()
