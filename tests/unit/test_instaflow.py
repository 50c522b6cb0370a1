"""InstaFlow in 2-D (flowviz.methods.instaflow): conditional teachers land on their part,
guidance is the stated linear combination, the coverage control sets the frequencies it claims,
and the pipeline runs every phase with a one-call student."""

import dataclasses

import pytest
import torch

from flowviz.data import mixture_means, sample
from flowviz.exact import ExactField, vp_pf_ode_drift
from flowviz.methods.fm import guided
from flowviz.methods.instaflow import (
    CONDITIONS,
    PHASES,
    ConditionalExact,
    InstaFlowPipeline,
    InstaFlowRun,
    class_samples,
    condition_probs,
    conditional_fm_objective,
)
from flowviz.methods.reflow import ReflowConfig
from flowviz.models import MLPConfig
from flowviz.paths import LinearPath, VPPath
from flowviz.solvers import solve
from flowviz.train import OptimConfig
from tests.conftest import labels_passed


@pytest.fixture(scope="module")
def eight():
    x, lab = sample("8gaussians", 800, 0)
    return x, lab, ConditionalExact(x, lab, 8, VPPath(), h=0.05)


def test_conditional_field_is_each_parts_exact_field(eight):
    x, lab, f = eight
    q, t = torch.randn(50, 2), torch.full((50,), 0.4)
    c = torch.arange(50) % 9  # 8: the "no condition" token
    out = f(q, t, label=c)
    for k in range(9):
        part = ExactField(x if k == 8 else x[lab == k], VPPath(), h=0.05)
        m = c == k
        assert torch.allclose(out[m], vp_pf_ode_drift(part, q[m], t[m]).float(), atol=1e-5)
    assert torch.allclose(f(q, t), vp_pf_ode_drift(f.full, q, t).float(), atol=1e-5)


def test_teacher_samples_land_on_their_condition(eight):
    *_, f = eight
    means = mixture_means("8gaussians")
    for c in range(8):
        lab = torch.full((300,), c)
        x = solve(lambda x, t, lab=lab: f(x, t, label=lab), torch.randn(300, 2), "euler", 40,
                  t1=VPPath().t_max).x
        near = (x - means[c]).norm(dim=1) < 1.0
        assert near.float().mean() > 0.97, (CONDITIONS["8gaussians"][c], near.float().mean())


def test_guidance_is_linear_in_w(eight):
    *_, f = eight
    q, t, c = torch.randn(40, 2), torch.full((40,), 0.5), torch.randint(0, 8, (40,))
    vu, vc = f(q, t), f(q, t, label=c)
    assert guided(f, 1.0) is f
    assert torch.allclose(guided(f, 0.0)(q, t, label=c), vu, atol=1e-6)
    assert torch.allclose(guided(f, 3.0)(q, t, label=c), vu + 3 * (vc - vu), atol=1e-5)


def test_linear_path_teacher_is_the_exact_velocity():
    x, lab = sample("moons", 300, 1)
    f = ConditionalExact(x, lab, 2, LinearPath())
    q, c = torch.randn(20, 2), torch.zeros(20, dtype=torch.long)
    ref = ExactField(x[lab == 0], LinearPath())(q, 0.3)
    assert torch.allclose(f(q, torch.full((20,), 0.3), label=c), ref, atol=1e-6)


def test_condition_probs_and_rare_frequency():
    p = condition_probs(8, rare=3, share=0.02)
    assert torch.isclose(p.sum(), torch.tensor(1.0, dtype=p.dtype))
    assert p[3] == 0.02 and torch.allclose(p[torch.arange(8) != 3], torch.tensor(0.98 / 7,
                                                                              dtype=p.dtype))
    tiny = dict(n_triples=20_000, teacher="exact_vp", n_data=200)
    pipe = InstaFlowPipeline(InstaFlowRun(rare=3, rare_share=0.02, **tiny), torch.device("cpu"))
    freq = float((pipe.cond == 3).double().mean())
    assert abs(freq - 0.02) < 4 * (0.02 * 0.98 / 20_000) ** 0.5
    fixed = InstaFlowPipeline(InstaFlowRun(rare=3, rare_share=0.02, fix="resample", **tiny),
                              torch.device("cpu"))
    assert abs(float((fixed.cond == 3).double().mean()) - 1 / 8) < 0.01


def test_reweight_balances_the_batches():
    run = InstaFlowRun(n_triples=4000, n_data=200, rare=0, rare_share=0.01, fix="reweight")
    pipe = InstaFlowPipeline(run, torch.device("cpu"))
    idx = torch.multinomial(pipe.weights, 80_000, replacement=True,
                            generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(pipe.cond[idx], minlength=8).double() / 80_000
    assert torch.allclose(freq, torch.full((8,), 1 / 8, dtype=freq.dtype), atol=0.01)


def test_label_dropout_rate():
    obj = conditional_fm_objective("8gaussians", 20_000, 8, p_uncond=0.25)
    assert abs(float((labels_passed(obj) == 8).double().mean()) - 0.25) < 0.015


def test_class_samples_are_that_part():
    x = class_samples("8gaussians", 5, 500, seed=3)
    assert x.shape == (500, 2)
    assert ((x - mixture_means("8gaussians")[5]).norm(dim=1) < 1.5).all()


def test_config_json_roundtrip_and_validation():
    run = InstaFlowRun(target="moons", teacher="rf", rare=1, fix="reweight")
    assert run.model.n_classes == 2
    again = InstaFlowRun.from_dict(__import__("json").loads(run.to_json()))
    assert again == run and hash(again) == hash(run)
    with pytest.raises(ValueError, match="no named parts"):
        InstaFlowRun(target="swiss_roll")


@pytest.mark.parametrize("teacher", ["exact_vp", "rf"])
def test_tiny_pipeline_runs_every_phase(teacher):
    opt = OptimConfig(steps=20, lr=1e-2, warmup=2)
    run = InstaFlowRun(target="two_mode", teacher=teacher, n_data=200, n_triples=256,
                       teacher_steps=5, teacher_optim=opt, teacher_batch=64,
                       reflow=ReflowConfig(solver="euler", steps=4, chunk=128, batch=64,
                                           optim=opt),
                       student_steps=20, model=MLPConfig(hidden=16, depth=1))
    pipe = InstaFlowPipeline(run, torch.device("cpu")).run_all()
    want = [p for p in PHASES if teacher == "rf" or p != "teacher"]
    assert pipe.done and pipe.status == "done" and list(pipe.seconds_by_phase) == want
    assert pipe.progress()[0] == 1.0
    calls = []
    student = pipe.model("student from 2-RF")
    h = student.register_forward_hook(lambda *a: calls.append(1))
    x = pipe.sample("student from 2-RF", torch.randn(30, 2), torch.zeros(30, dtype=torch.long))
    h.remove()
    assert x.shape == (30, 2) and len(calls) == 1
    # the student from 2-RF learned the 2-RF's endpoints, the other the teacher's triples
    assert torch.equal(pipe.pairs("2-RF endpoints").x0, pipe.pairs("triples").x0)


def test_nan_stops_the_pipeline():
    run = InstaFlowRun(target="two_mode", n_data=100, n_triples=128, teacher_steps=2,
                       reflow=ReflowConfig(solver="euler", steps=2, chunk=128, batch=32,
                                           optim=OptimConfig(steps=30, lr=1e30, warmup=1,
                                                             grad_clip=0)),
                       model=MLPConfig(hidden=8, depth=1))
    pipe = InstaFlowPipeline(dataclasses.replace(run), torch.device("cpu")).run_all()
    assert pipe.status == "nan" and pipe.done and "2-RF" in pipe.message


def test_trained_conditional_teacher_respects_its_condition():
    """A short conditional 1-RF on two modes: each label's samples land on its own mode, and
    label dropout taught it the unconditional field too (both modes, about half each)."""
    run = InstaFlowRun(target="two_mode", teacher="rf", teacher_batch=256,
                       teacher_optim=OptimConfig(steps=400, lr=1e-2, warmup=20),
                       model=MLPConfig(hidden=64, depth=2), n_triples=16)
    pipe = InstaFlowPipeline(run, torch.device("cpu"))
    while pipe.phase == "teacher":
        pipe.advance()
    means = mixture_means("two_mode")
    x0 = torch.randn(400, 2, generator=torch.Generator().manual_seed(3))
    for c in range(2):
        x = pipe.sample("teacher", x0, torch.full((400,), c), 20)
        assert ((x - means[c]).norm(dim=1) < 1.0).float().mean() > 0.95
    xu = solve(lambda z, t: pipe.teacher(z, t), x0, "euler", 20).x
    top = float((xu[:, 1] > 0).float().mean())
    assert 0.35 < top < 0.65, top


def test_cli_runs_a_config_and_saves_a_loadable_checkpoint(tmp_path, capsys):
    from flowviz import checkpoint
    from flowviz.cli import main

    opt = OptimConfig(steps=20, lr=1e-2, warmup=2)
    run = InstaFlowRun(target="two_mode", n_data=200, n_triples=256, teacher_steps=5,
                       reflow=ReflowConfig(solver="euler", steps=4, chunk=128, batch=64,
                                           optim=opt),
                       student_steps=20, model=MLPConfig(hidden=16, depth=1))
    cfg = tmp_path / "run.json"
    cfg.write_text(run.to_json())
    out = tmp_path / "if.pt"
    assert main(["instaflow", "--config", str(cfg), "--out", str(out), "--n", "200",
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "top" in text and "bottom" in text and "student from 2-RF" in text
    loaded, done = checkpoint.load_all(out, kind="instaflow")
    assert loaded == run and list(done) == [p for p in PHASES if p != "teacher"]
