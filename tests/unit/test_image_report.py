"""flowviz.images.report: what the Scaling page reports, checked against hand-made rows and
against the samplers it wraps (tiny untrained U-Nets)."""

import dataclasses

import numpy as np
import pytest
import torch

from flowviz.images import report
from flowviz.images.experiment import LABELS, ImageRun, build_model, generate, noise
from flowviz.images.grid import to_grid
from flowviz.models import UNetConfig

TINY = UNetConfig(size=8, base=8, mults=(1, 2), groups=4, emb=16)


def q(method, nfe, fd, n_classes=10, confident=0.9):
    return {"method": method, "nfe": nfe, "fd": fd, "n_classes": n_classes,
            "confident": confident}


ROWS = [q("fm", 4, 200.0), q("fm", 1, 5000.0, 1), q("fm", 16, 30.0), q("fm", 128, 15.0),
        q("shortcut", 1, 27.0), q("meanflow", 1, 24.0), q("meanflow", 2, 19.0),
        q("distill", 1, 26.0), q("reflow", 1, 20.0)]  # 2-RF is no jumping method


def test_quality_curves_are_in_nfe_order_under_the_method_labels():
    c = report.quality_curves(ROWS)
    assert list(c) == [LABELS[m] for m in ("fm", "reflow", "distill", "shortcut", "meanflow")]
    assert c[LABELS["fm"]] == ([1, 4, 16, 128], [5000.0, 200.0, 30.0, 15.0])
    assert report.collapsed(ROWS) == [(1, 5000.0, 1)]


def test_one_step_reach_picks_the_best_jump_and_the_nfe_flow_matching_needs():
    r = report.one_step_reach(ROWS)
    assert r["method"] == "meanflow" and r["fd"] == 24.0  # reflow's 20 is not a jump
    assert (r["ref_nfe"], r["ref_fd"], r["ref_fd_1"]) == (128, 15.0, 5000.0)
    assert r["ratio"] == pytest.approx(1.6) and r["matched_at"] == 128  # 30 > 24 at 16
    assert report.reach_class(r["ratio"]) == "close"
    assert report.reach_class(0.9) == "better" and report.reach_class(2.01) == "far"
    better = [x for x in ROWS if x["method"] == "fm"] + [q("meanflow", 1, 14.0)]
    assert report.one_step_reach(better)["matched_at"] is None  # no FM NFE does as well
    with pytest.raises(ValueError, match="one-step"):
        report.one_step_reach([x for x in ROWS if x["method"] == "fm"])


def test_decade_span_covers_the_values_with_room_above():
    assert report.decade_span(12.0, 5871.0) == (10.0, 10000.0)
    assert report.decade_span(0.03, 0.5) == pytest.approx((0.01, 1.0))
    assert report.decade_span(10.0, 100.0) == (10.0, 1000.0)


def bench_row(name, ms, method=None, precision="fp32", **kw):
    r = {"name": name, "ms": ms, "img_s": 1000.0 / ms, "peak_GiB": ms / 100}
    return {**r, "method": method, "precision": precision, **kw} if method else r


BENCH = {"info": {"ours_params": 35.5e6, "peer_params": 35.7e6}, "rows": [
    bench_row("ours: plain loop fp32", 60.0), bench_row("ours: plain loop bf16", 50.0),
    bench_row("peer: plain loop fp32", 40.0),
    bench_row("flowviz loop fm fp32", 100.0, "fm"),
    bench_row("flowviz loop fm bf16", 80.0, "fm", "bf16"),
    bench_row("flowviz loop meanflow fp32", 150.0, "meanflow"),
    bench_row("flowviz loop meanflow fp32 JVP target ungraphed", 300.0, "meanflow"),
    bench_row("flowviz loop shortcut fp32 target ungraphed", 130.0, "shortcut"),
    bench_row("flowviz loop fm fp32 compile default", 10.0, "fm", compile=True),
    bench_row("flowviz loop meanflow fp32 batch 512", 5.0, "meanflow", batch_size=512),
    {"name": "flowviz loop fm bf16 compile reduce-overhead", "error": "failed"}],
    "ddp": [{"world": w, "method": "fm", "precision": "bf16", "batch_per_gpu": 128,
             "img_s": s} for w, s in ((1, 100.0), (2, 190.0))]}


def test_method_steps_compare_eager_steps_with_flow_matching():
    fm, sc, mf = report.method_steps(BENCH)
    assert fm["step cost vs FM"] == "1.00×" and fm["… target ungraphed"] == "–"
    assert mf["step cost vs FM"] == "1.50×" and mf["… target ungraphed"] == "3.00×"
    assert sc["step cost vs FM"] == "–" and sc["… target ungraphed"] == "1.30×"  # no graphed row
    assert fm["images/s (fp32)"] == "10" and fm["images/s (bf16)"] == "12"  # 1000/100, 1000/80
    assert fm["peak GiB (bf16)"] == "0.8" and mf["images/s (bf16)"] == "–"


def test_peer_and_ddp_rows():
    ours, peer = report.peer_rows(BENCH)
    assert ours == {"U-Net": "flowviz", "parameters (M)": 35.5, "images/s (fp32)": 17,
                    "images/s (bf16)": 20}
    assert peer["U-Net"] == "peer" and peer["parameters (M)"] == 35.7
    (d,) = report.ddp_rows(BENCH)
    assert (d["1 GPU images/s"], d["2 GPUs images/s"], d["speed-up"]) == (100, 190, "1.90×")
    assert report.ddp_rows({"rows": []}) == []


def test_latent_and_guidance_tables():
    s = [{**q(m, k, fd, n), "what": "samples"} for m, k, fd, n in
         (("fm", 1, 2592.1, 2), ("fm", 4, 40.0, 10), ("meanflow", 1, 30.0, 10))]
    rows = s + [{**q("fm", None, 16.0), "what": "data"}]
    table = report.latent_quality_table(rows, ("fm", "shortcut", "meanflow"))
    assert [r["NFE"] for r in table] == [1, 4]
    assert table[0][LABELS["fm"]] == "FD 2592.1 · 90% confident, 2 classes only"
    assert table[1][LABELS["meanflow"]] == "–" and LABELS["shortcut"] not in table[0]
    cfg = [{"nfe": 32, "w": w, "agree": a, "agree_confident": a, "confident": 0.9, "fd": 1.0}
           for w, a in ((2.0, 0.99), (0.0, 0.1))] + [{"nfe": 8, "w": 1.0}]
    table = report.guidance_table(cfg, 32)
    assert [r["w"] for r in table] == [0.0, 2.0]
    assert table[1]["classified as conditioned"] == "99.0%"
    assert table[0]["… with p ≥ 0.9"] == "10.0%"


def test_sample_grids_are_the_sampler_from_one_noise(seed):
    run = ImageRun(size=8, batch=8, model=TINY)
    net = build_model(run).eval()
    for p in net.parameters():  # zero-initialised outputs would make every NFE alike
        p.data.normal_(0, 0.2)
    g = report.sample_grids(run, net, (1, 4), 4, seed=3, ncol=2)
    for k in (1, 4):
        want = to_grid(generate(run, net, noise(run, 4, 3), k), 2)
        assert np.array_equal(g[k][0], want) and g[k][1] >= 0
    assert not np.array_equal(g[1][0], g[4][0]) and isinstance(g["machine"], str)
    student = dataclasses.replace(run, method="distill", teacher="t.pt")
    student = report.sample_grids(student, net, (1, 4), 4, 3)
    assert 1 in student and 4 not in student


def test_guided_grids_rows_share_their_noise(seed):
    run = ImageRun(size=8, batch=8, model=dataclasses.replace(TINY, n_classes=10))
    net = build_model(run).eval()
    for p in net.parameters():
        p.data.normal_(0, 0.2)
    g = report.guided_grids(run, net, (0.0, 2.0), nfe=2, per_class=2, seed=1)
    tile = 8 + 1  # one row of tiles per class

    def rows(grid):
        return [grid[1 + c * tile:c * tile + tile] for c in range(10)]

    r0, r2 = rows(g[0.0][0]), rows(g[2.0][0])
    assert g[0.0][0].shape == (10 * tile + 1, 2 * tile + 1)
    assert all(np.array_equal(r0[0], r) for r in r0[1:])  # w = 0: the label is ignored
    assert not np.array_equal(r2[0], r2[1])  # w = 2: it is not


def test_same_weights_and_read_json(tmp_path):
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert report.same_weights(a, a) and not report.same_weights(a, b)
    assert report.read_json(tmp_path / "absent.json") == []
    (tmp_path / "q.json").write_text('[{"nfe": 1}]')
    assert report.read_json(tmp_path / "q.json") == [{"nfe": 1}]
