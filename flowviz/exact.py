"""Closed-form marginal fields for an empirical target and a Gaussian source (article §2.1).

Target: the data points y_1..y_N, each optionally widened into N(y_i, h^2 I) (h = 0: the
empirical distribution itself). Source: N(0, sigma^2 I). Path: x_t = a_t x0 + b_t x1. Given the
component i, x_t ~ N(b_t y_i, s_t^2 I) with s_t^2 = a_t^2 sigma^2 + b_t^2 h^2, so

    w_i(x, t) = p(i | x_t = x)  ∝  exp(-|x - b_t y_i|^2 / (2 s_t^2))        (posterior weights)
    m(x, t)   = sum_i w_i y_i                                               (mean data point)
    v*(x, t)  = E[a'_t x0 + b'_t x1 | x_t = x] = c_t x + (b'_t - c_t b_t) m,
                c_t = (a'_t a_t sigma^2 + b'_t b_t h^2) / s_t^2     (article §2: E[x1 - x0 | x_t])
    Cov[a'_t x0 + b'_t x1 | x_t = x] = (b'_t - c_t b_t)^2 Cov_w[y]  +  k_t I,
                k_t = a'^2 sigma^2 + b'^2 h^2 - (a' a sigma^2 + b' b h^2)^2 / s_t^2
    score(x, t) = grad log p_t(x) = -(x - b_t m) / s_t^2.

For h = 0 and the linear path, v* = (m - x) / (1 - t) and Cov = Cov_w[y] / (1 - t)^2. The
field of the empirical (h = 0) target is singular at t = 1 (it collapses onto the data points);
h > 0 removes that, which matters when solvers are compared on it. Everything is computed in
float64, in query chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .paths import LinearPath, VPPath

A_MIN = 1e-4  # floor on a_t (the noise scale): keeps t -> 1 finite when h = 0
CHUNK = 2**22  # max (query x data) entries per chunk


@dataclass
class Posterior:
    """Posterior over data points given x_t = x, for Q query points."""

    weights: torch.Tensor | None  # (Q, N) rows sum to one, when requested
    mean: torch.Tensor  # (Q, D) m = E_w[y]
    cov: torch.Tensor | None  # (Q, D, D) Cov_w[y], when requested


class ExactField:
    """The true marginal velocity/score of a path from N(0, sigma^2 I) to the data mixture.

    Call it like a model: ``field(x, t) -> v*(x, t)`` with x of shape (B, *dims), t scalar or (B,).
    """

    def __init__(self, data: torch.Tensor, path=LinearPath(), sigma: float = 1.0, h: float = 0.0):
        self.data = data.flatten(1).double()
        self.path, self.sigma, self.h = path, sigma, h

    def coeffs(self, t, x: torch.Tensor):
        """Per-row (a, b, a', b', s^2, c), each of shape (Q, 1), float64."""
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device)
        t = t.reshape(-1, 1).expand(x.shape[0], 1) if t.dim() else t.expand(x.shape[0], 1)
        a, b, da, db = self.path.coeffs(t)
        if self.h == 0:  # only the empirical target is singular at t = 1; h > 0 needs no floor
            a = a.clamp_min(A_MIN)
        s2 = (a * self.sigma) ** 2 + (b * self.h) ** 2
        c = (da * a * self.sigma**2 + db * b * self.h**2) / s2
        return a, b, da, db, s2, c

    def posterior(self, x: torch.Tensor, t, cov: bool = False, weights: bool = True) -> Posterior:
        xf = x.flatten(1).double()
        _, b, _, _, s2, _ = self.coeffs(t, xf)
        y = self.data.to(xf.device)
        # -|x - b y|^2 / (2 s^2) = [x b / s^2, -b^2 / (2 s^2)] . [y, |y|^2] + (terms in x alone,
        # which cancel in the softmax): one matmul per chunk.
        y_aug = torch.cat([y, (y * y).sum(1, keepdim=True)], 1)
        x_aug = torch.cat([xf * b / s2, -0.5 * b**2 / s2], 1)
        step = max(1, CHUNK // max(1, len(y)))
        ws, ms, cs = [], [], []
        for i in range(0, len(xf), step):
            # softmax, normalised after the product with y (Q divisions instead of Q x N) and
            # in place unless autograd runs through the field: ~2x faster than torch.softmax
            w = x_aug[i:i + step] @ y_aug.T
            if w.requires_grad:
                w = (w - w.amax(1, keepdim=True).detach()).exp()
            else:
                w = w.sub_(w.amax(1, keepdim=True)).exp_()
            z = w.sum(1, keepdim=True)
            m = (w @ y) / z
            if weights or cov:
                w = w / z if w.requires_grad else w.div_(z)
            ms.append(m)
            if weights:
                ws.append(w)
            if cov:
                cs.append(torch.einsum("qn,nd,ne->qde", w, y, y) - m[:, :, None] * m[:, None, :])
        return Posterior(torch.cat(ws) if weights else None, torch.cat(ms),
                         torch.cat(cs) if cov else None)

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """v*(x, t), returned in x's dtype and shape."""
        xf = x.flatten(1).double()
        m = self.posterior(x, t, weights=False).mean
        _, b, _, db, _, c = self.coeffs(t, xf)
        return (c * xf + (db - c * b) * m).reshape(x.shape).to(x.dtype)

    __call__ = velocity

    def velocity_cov(self, x: torch.Tensor, t) -> torch.Tensor:
        """Cov[a'_t x0 + b'_t x1 | x_t = x], (Q, D, D): where averaging bends the flow."""
        xf = x.flatten(1).double()
        p = self.posterior(x, t, cov=True, weights=False)
        a, b, da, db, s2, c = self.coeffs(t, xf)
        k = (da * self.sigma) ** 2 + (db * self.h) ** 2 \
            - (da * a * self.sigma**2 + db * b * self.h**2) ** 2 / s2
        eye = torch.eye(xf.shape[1], dtype=xf.dtype, device=xf.device)
        return (db - c * b)[:, :, None] ** 2 * p.cov + k.clamp_min(0)[:, :, None] * eye

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """grad_x log p_t(x) of the marginal at time t."""
        xf = x.flatten(1).double()
        m = self.posterior(x, t, weights=False).mean
        _, b, _, _, s2, _ = self.coeffs(t, xf)
        return (-(xf - b * m) / s2).reshape(x.shape).to(x.dtype)

    def pairs_through(self, x: torch.Tensor, t: float):
        """The pairs whose paths pass through one point x (D,) at time t (article §2.1).

        Returns (w (N,), x0 (N, D), x1 (N, D)): the posterior weight of each data point and the
        conditional means E[x0 | x_t = x, i], E[x1 | x_t = x, i]. Their velocities averaged with
        the weights give v*(x, t): sum_i w_i (a' x0_i + b' x1_i) = v*.
        """
        xf = x.reshape(1, -1).double()
        a, b, _, _, s2, _ = self.coeffs(t, xf)
        w = self.posterior(xf, t).weights[0]
        r = xf - b * self.data  # (N, D) noise part of x given component i
        return w, a * self.sigma**2 * r / s2, self.data + b * self.h**2 * r / s2

    def sample_target(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exact samples of the target mixture (the law the exact flow transports to)."""
        i = torch.randint(0, len(self.data), (n,), generator=generator)
        noise = torch.randn(n, self.data.shape[1], generator=generator, dtype=torch.float64)
        return (self.data[i] + self.h * noise).float()


def vp_pf_ode_drift(field: ExactField, x: torch.Tensor, t) -> torch.Tensor:
    """Diffusion PF-ODE (article §1.1, dx/ds = f - g^2 score / 2) in flow time t = 1 - s.

    For the VP SDE f = -beta x / 2, g^2 = beta, so dx/dt = beta(1 - t) (x + score) / 2.
    Computed from the score alone: it must agree with the VP path's marginal velocity.
    """
    assert isinstance(field.path, VPPath) and field.sigma == 1.0
    tt = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    beta = field.path.beta(tt).reshape(-1, *([1] * (x.dim() - 1)) if tt.dim() else ())
    return 0.5 * beta * (x + field.score(x, t))
