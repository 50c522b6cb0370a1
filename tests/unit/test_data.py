"""flowviz.data: toy samplers, user point files (validation, never unpickling), couplings."""

import io
import itertools
import math

import numpy as np
import pytest
import torch

from flowviz import data, metrics
from flowviz.data import MAX_POINTS, PointsError, load_points, points_sampler, validate_points
from flowviz.data.points import MAX_BYTES

# ---------------------------------------------------------------------------- toy samplers


@pytest.mark.parametrize("name", sorted(data.SAMPLERS))
def test_sampler_contract(name):
    x, lab = data.SAMPLERS[name](500, torch.Generator().manual_seed(3))
    assert x.shape == (500, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert lab.shape == (500,) and lab.dtype == torch.long
    # "spread of about 2-4 units, like a standard normal source"
    assert 0.5 < x.std(0).max() < 4 and x.abs().max() < 10


@pytest.mark.parametrize("name", sorted(data.SAMPLERS))
def test_sample_reproducible_and_seed_dependent(name):
    x1, l1 = data.sample(name, 200, seed=7)
    x2, l2 = data.sample(name, 200, seed=7)
    x3, _ = data.sample(name, 200, seed=8)
    assert torch.equal(x1, x2) and torch.equal(l1, l2)
    assert not torch.allclose(x1, x3)


def test_sample_rejects_unknown_name():
    with pytest.raises(KeyError, match="unknown dataset"):
        data.sample("not-a-dataset", 10)


def test_eight_gaussians_labels_are_the_nearest_mode():
    x, lab = data.sample("8gaussians", 2000, seed=0)
    ang = torch.arange(8) * (2 * math.pi / 8)  # independent: 8 points on a circle of radius 3
    means = 3 * torch.stack([ang.cos(), ang.sin()], 1)
    assert torch.equal(torch.cdist(x, means).argmin(1), lab)
    assert set(lab.tolist()) == set(range(8))
    assert data.EIGHT_GAUSSIAN_NAMES[int(lab[0])] in ("E", "NE", "N", "NW", "W", "SW", "S", "SE")


def test_checkerboard_only_black_cells():
    x, _ = data.sample("checkerboard", 4000, seed=0)
    assert (x.abs() <= 4).all()
    col, row = ((x + 4) // 2).long().clamp(0, 3).unbind(1)
    assert ((col + row) % 2 == 0).all()  # one colour of the 4x4 board only
    assert len(set(zip(col.tolist(), row.tolist(), strict=True))) == 8


def test_rings_radii_match_labels():
    x, lab = data.sample("rings", 3000, seed=0)
    r = x.norm(dim=1)
    assert ((r - (lab + 1).float()).abs() < 0.5).all()
    # mass proportional to circumference 1 : 2 : 3
    frac = torch.bincount(lab, minlength=3).double() / len(lab)
    assert torch.allclose(frac, torch.tensor([1, 2, 3.0], dtype=torch.float64) / 6, atol=0.04)


# ---------------------------------------------------------------------------- point files

def _npy(arr, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, **kw)
    return buf.getvalue()


GOOD = [[0.5, -1.0], [2.0, 3.25], [-4.0, 0.0]]


@pytest.mark.parametrize("text", [
    "0.5,-1\n2,3.25\n-4,0\n",  # comma, no header
    "x,y\n0.5,-1\n2,3.25\n-4,0\n",  # comma, header
    "0.5 -1\n2 3.25\n-4 0",  # whitespace, no header, no final newline
    "x y\n0.5\t-1\n2   3.25\n-4 0\n",  # whitespace/tab, header
    "x,y\r\n0.5, -1\r\n2, 3.25\r\n-4, 0\r\n",  # Windows line ends, spaces after commas
    "\ufeff0.5,-1\n2,3.25\n-4,0\n",  # UTF-8 BOM (Excel "CSV UTF-8"), no header
    "\ufeffx,y\n0.5,-1\n2,3.25\n-4,0\n",  # BOM + header
    "\n\nx,y\n0.5,-1\n2,3.25\n-4,0\n\n",  # blank lines around
])
def test_load_good_csv(text):
    pts = load_points(text.encode("utf-8"), "pts.csv")
    assert pts.dtype == torch.float32
    assert torch.equal(pts, torch.tensor(GOOD))


def test_load_good_npy_and_txt():
    for arr in (np.array(GOOD, dtype=np.float64), np.array(GOOD, dtype=np.float32)):
        assert torch.equal(load_points(_npy(arr), "PTS.NPY"), torch.tensor(GOOD))
    ints = np.array([[1, 2], [3, 4]], dtype=np.int64)
    assert torch.equal(load_points(_npy(ints), "p.npy"), torch.tensor([[1.0, 2], [3, 4]]))
    assert torch.equal(load_points(b"1 2\n3 4\n", "p.txt"), torch.tensor([[1.0, 2], [3, 4]]))


@pytest.mark.parametrize("payload, name, match", [
    (_npy(np.zeros((5, 3))), "a.npy", r"shape \(N, 2\).*\(5, 3\)"),
    (b"1,2,3\n4,5,6\n", "a.csv", r"shape \(N, 2\).*\(2, 3\)"),
    (_npy(np.zeros(6)), "a.npy", r"shape \(N, 2\).*\(6,\)"),
    (b"1\n2\n3\n", "a.csv", r"shape \(N, 2\).*\(3, 1\)"),
    (_npy(np.zeros((2, 2, 2))), "a.npy", r"shape \(N, 2\)"),
    (b"1,2\n", "a.csv", r"between 2 and .* got 1"),
    (b"1,2\nnan,3\n4,inf\n5,6\n", "a.csv", r"2 rows contain NaN or infinite"),
    (_npy(np.array([[1.0, np.nan], [2, 3], [3, 4]])), "a.npy", r"1 rows contain NaN"),
    (b"hello world\nfoo bar\n", "a.csv", r"Could not read a\.csv"),
    (b"1,2\n3,x\n", "a.csv", r"Could not read"),
    (b"1,2\n3\n", "a.csv", r"Could not read"),
    (b"\xff\xfe\x00\x01garbage", "a.csv", r"Could not read"),
    (b"not an npy file", "a.npy", r"Could not read"),
    (b"", "a.csv", r"(?i)no data|shape|points"),
    (b"x,y\n", "a.csv", r"(?i)no data|shape|points"),
    (b"1,2\n3,4\n", "a.json", r"\.csv, \.txt or \.npy"),
    (b"1,2\n3,4\n", "points", r"\.csv, \.txt or \.npy"),
    (_npy(np.array([[True, False], [False, True]])), "a.npy", r"Expected numbers"),
    (_npy(np.zeros(3, dtype=[("x", "f4"), ("y", "f4")])), "a.npy", r"Expected numbers"),
])
def test_bad_inputs_raise_points_error(payload, name, match):
    with pytest.raises(PointsError, match=match):
        load_points(payload, name)


def test_too_many_points():
    with pytest.raises(PointsError, match=f"between 2 and {MAX_POINTS}.*got {MAX_POINTS + 1}"):
        load_points(b"0,0\n" * (MAX_POINTS + 1), "a.csv")
    with pytest.raises(PointsError, match=str(MAX_POINTS)):
        validate_points(np.zeros((MAX_POINTS + 1, 2)))
    assert validate_points(np.zeros((MAX_POINTS, 2))).shape == (MAX_POINTS, 2)


def test_file_too_big():
    with pytest.raises(PointsError, match=r"MiB.*limit"):
        load_points(b"0" * (MAX_BYTES + 1), "a.csv")


class _Boom:
    """Unpickling this calls _Boom.trigger: proof that a file was (wrongly) unpickled."""

    fired = False

    @classmethod
    def trigger(cls):
        cls.fired = True
        return 0

    def __reduce__(self):
        return (_Boom.trigger, ())


def test_pickled_npy_is_refused_never_unpickled():
    arr = np.empty((2, 2), dtype=object)
    arr[:] = _Boom()
    payload = _npy(arr, allow_pickle=True)
    np.load(io.BytesIO(payload), allow_pickle=True)  # sanity: the payload does fire when unpickled
    assert _Boom.fired
    _Boom.fired = False
    with pytest.raises(PointsError, match=r"(?i)could not read.*(object|pickle)"):
        load_points(payload, "evil.npy")
    assert not _Boom.fired
    with pytest.raises(PointsError, match="Expected numbers"):
        validate_points(np.array([[1, 2], [3, "a"]], dtype=object))


def test_points_sampler_resamples_only_given_points():
    pts = torch.tensor([[10.0, 0.0], [0.0, -7.0], [3.0, 3.0]])
    x, lab = points_sampler(pts)(600, torch.Generator().manual_seed(0))
    assert x.shape == (600, 2) and lab.shape == (600,) and (lab == 0).all()
    eq = (x[:, None, :] == pts[None]).all(-1)  # (n, 3): draw i is exactly point j
    assert (eq.sum(1) == 1).all()  # every draw is exactly one of the given points
    hits = eq.long().argmax(1).bincount(minlength=3)
    assert (hits > 150).all()  # with replacement, roughly uniformly
    x2, _ = points_sampler(pts)(600, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)


# ---------------------------------------------------------------------------- couplings

def test_minibatch_ot_is_the_brute_force_optimum():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x0, x1 = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g) + 1
        a, b = x0.double().numpy(), x1.double().numpy()
        c = ((a[:, None] - b[None]) ** 2).sum(-1)
        best = min(c[np.arange(6), list(p)].sum() for p in itertools.permutations(range(6)))
        y0, y1 = data.minibatch_ot(x0, x1)
        assert torch.equal(y0, x0)
        # y1 is a permutation of x1 (each row used exactly once)
        eq = (y1[:, None, :] == x1[None]).all(-1)
        assert torch.equal(eq.sum(0), torch.ones(6, dtype=torch.long)) and eq.sum(1).eq(1).all()
        cost = ((y1.double() - x0.double()) ** 2).sum()
        assert float(cost) == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_minibatch_ot_on_image_shapes_and_couple():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(5, 1, 2, 2, generator=g)
    perm = torch.tensor([3, 0, 4, 1, 2])
    x1 = x0[perm] + 1e-3 * torch.randn(5, 1, 2, 2, generator=g)
    # the obvious optimum: pair each x0 with its own slightly perturbed copy
    _, y1 = data.couple("ot", x0, x1)
    assert y1.shape == x1.shape and torch.allclose(y1, x0, atol=1e-2)
    assert data.couple("independent", x0, x1)[1] is x1
    with pytest.raises(ValueError, match="unknown coupling"):
        data.couple("sinkhorn", x0, x1)


def test_ot_lowers_cost_and_crossings_vs_independent():
    x0, _ = data.sample("gaussian", 256, seed=0)
    x1, _ = data.sample("moons", 256, seed=1)
    i0, i1 = data.independent(x0, x1)
    o0, o1 = data.minibatch_ot(x0, x1)
    assert metrics.transport_cost(o0, o1) < 0.6 * metrics.transport_cost(i0, i1)
    assert metrics.crossing_fraction(o0, o1) < 0.3 * metrics.crossing_fraction(i0, i1)


def test_points_sampler_widened():
    """h > 0: draws from the mixture of N(p_i, h^2 I) over the given points."""
    pts = torch.tensor([[10.0, 0.0], [-10.0, 0.0]])
    x, _ = points_sampler(pts, h=0.5)(20_000, torch.Generator().manual_seed(0))
    near = torch.cdist(x, pts).argmin(1)
    r = x - pts[near]
    assert r.abs().max() < 0.5 * 6
    assert torch.allclose(r.mean(0), torch.zeros(2), atol=4 * 0.5 / 20_000**0.5)
    assert torch.allclose(r.std(0), torch.full((2,), 0.5), rtol=0.03)
