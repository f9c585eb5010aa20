"""What every normalizing flow here shares: the data pre-transform, the prior, training and the contract.

A flow is an invertible map f from data x to z with a tractable log-determinant; by the change of
variables, log p(x) = log N(f(x); 0, I) + log |det df/dx| (Dinh et al. 2015; Rezende & Mohamed 2015).
A subclass implements only the flow itself, :meth:`FlowEngine.flow_forward` (x-side to z, with the
log-determinant) and :meth:`FlowEngine.flow_inverse`; this base does the rest.

Images: from 8 bits to the real line
------------------------------------
Image data are 8-bit grey levels, x8 = round(255 x) in {0..255}^D (D = C*H*W). Training draws
uniform dequantisation noise (Theis, van den Oord & Bethge 2016): y = (x8 + u) / 256 with
u ~ U[0, 1)^D; evaluation, :meth:`FlowEngine.encode` and :meth:`FlowEngine.log_prob` use the
midpoint u = 1/2, so they are deterministic. y then goes through the logit pre-transform of RealNVP
(Dinh et al. 2017, section 4.1), s = logit(alpha + (1 - 2 alpha) y) with alpha = :data:`ALPHA`, whose
log-determinant sum_d [log(1 - 2 alpha) - log p_d - log(1 - p_d)] (p = alpha + (1 - 2 alpha) y) is
counted. The flow maps s (N, C, H, W) to z of the same shape.

The log-likelihood reported is that of the discrete 8-bit image:
log P(x8) ~= log p(y) - D log 256, where log p(y) is the continuous density of y in [0, 1]^D (the
dequantisation bound, Theis et al. 2016, evaluated at the midpoint). Bits per dimension in the 8-bit
space are then -log P(x8) / (D ln 2), the figure the flow papers quote.

:meth:`FlowEngine.decode` inverts all of it without rounding, x = (256 y - 1/2) / 255 clamped to
[0, 1], so decode(encode(x)) == x for any x in [0, 1] to float32 precision.

2-D points are modelled as they are: no dequantisation, no logit, z = f(x) in R^2.
"""

from __future__ import annotations

import math

import torch

from engines.models.base import Engine, EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import HyperParam, LatentSpec

#: The logit pre-transform's margin (RealNVP's alpha for MNIST-like data).
ALPHA = 0.05
LOG_2PI = math.log(2 * math.pi)
LOG_256 = math.log(256.0)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over all but the first axis: (N, ...) -> (N,), nats."""
    return -0.5 * (z.pow(2) + LOG_2PI).flatten(1).sum(1)


class FlowEngine(Engine):
    """Base of the flows: subclasses set ``config_class`` and implement the flow.

    Parameters
    ----------
    config : EngineConfig
        Must have ``lr`` (Adam learning rate); ``latent_dim`` is ignored (z has the data's shape).
    data : DataInfo
        Images (C, H, W) in [0, 1], or 2-D points.

    Attributes
    ----------
    points : bool
        Whether the data are 2-D points (no pre-transform).
    latent : LatentSpec
        Image-shaped (``LatentSpec.image(data.shape)``) for images, two Gaussian dimensions for points.
    hyper : dict
        ``lr`` (log scale) and ``temperature`` in [0, 1.5]: the prior's standard deviation when
        sampling (Kingma & Dhariwal 2018, section 5.3); 1 samples the model itself.

    Subclasses call ``super().__init__`` first, build their networks, then call :meth:`finish_init`
    to create the optimiser.
    """

    family = "flow"

    def __init__(self, config: EngineConfig, data: DataInfo) -> None:
        if data.kind not in ("image", "points"):
            raise ConfigError(f"{type(self).__name__}: unknown data kind {data.kind!r} of {data.spec}")
        super().__init__(config, data)
        self.points = data.kind == "points"
        self.latent = LatentSpec.gaussian(2) if self.points else LatentSpec.image(tuple(data.shape))
        self.n_dims = int(math.prod(data.shape))
        lr = float(getattr(config, "lr", 1e-3))
        self.hyper = {
            "lr": HyperParam("lr", 1e-3, 1e-6, 1e-1, log=True, doc="Adam learning rate").with_value(lr),
            "temperature": HyperParam("temperature", 1.0, 0.0, 1.5,
                                      doc="std of the prior when sampling (1: the model's own samples)"),
        }
        self.opt: torch.optim.Optimizer | None = None

    def finish_init(self) -> None:
        """Create the Adam optimiser over every parameter; call at the end of a subclass's __init__."""
        self.opt = torch.optim.Adam(self.parameters(), lr=self.h("lr"))

    # -- the flow, implemented by subclasses ------------------------------------------------------
    def flow_forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow from the (pre-transformed) data side to z.

        Parameters
        ----------
        s : (N, C, H, W) or (N, 2) tensor

        Returns
        -------
        z : tensor shaped like s
        logdet : (N,) tensor
            log |det dz/ds|, nats.
        """
        raise NotImplementedError

    def flow_inverse(self, z: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`flow_forward`: z shaped like the data -> s."""
        raise NotImplementedError

    # -- the pre-transform ------------------------------------------------------------------------
    def to_flow_space(self, x: torch.Tensor, noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Data x -> s, the flow's input, and log |det ds/dy| (N,) (zero for points).

        ``noise``: uniform dequantisation (training) rather than the midpoint (module docstring).
        """
        x = x.to(device=self.device, dtype=torch.float32)
        if self.points:
            return x, torch.zeros(x.shape[0], device=x.device)
        x8 = torch.round(x * 255.0) if noise else x * 255.0
        u = torch.rand_like(x) if noise else torch.full_like(x, 0.5)
        y = (x8 + u) / 256.0
        p = ALPHA + (1 - 2 * ALPHA) * y
        s = torch.log(p) - torch.log1p(-p)
        logdet = (math.log(1 - 2 * ALPHA) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        return s, logdet

    def from_flow_space(self, s: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_flow_space` at the midpoint: s -> x in [0, 1] (or points as they are)."""
        if self.points:
            return s
        y = (torch.sigmoid(s) - ALPHA) / (1 - 2 * ALPHA)
        return ((256.0 * y - 0.5) / 255.0).clamp(0.0, 1.0)

    def _log_likelihood(self, x: torch.Tensor, noise: bool) -> torch.Tensor:
        s, logdet_pre = self.to_flow_space(x, noise)
        z, logdet = self.flow_forward(s)
        log_p = standard_normal_log_density(z) + logdet + logdet_pre
        if not self.points:
            log_p = log_p - self.n_dims * LOG_256  # density of y in [0,1]^D -> probability of the 8-bit image
        return log_p

    # -- hyperparameters --------------------------------------------------------------------------
    def on_hyper_changed(self, name: str, value: float) -> None:
        if name == "lr" and self.opt is not None:
            for group in self.opt.param_groups:
                group["lr"] = value

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.opt} if self.opt is not None else {}

    # -- the contract -----------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One Adam step on the negative log-likelihood of the batch (dequantised with fresh noise).

        Returns
        -------
        dict of str to float
            ``nll`` (nats per example, batch mean; of the 8-bit image for image data), ``loss`` (the
            same), and for images ``bits_per_dim`` (nll / (D ln 2)).
        """
        self.train()
        nll = -self._log_likelihood(batch, noise=True).mean()
        self.opt.zero_grad(set_to_none=True)
        nll.backward()
        self.opt.step()
        value = float(nll.detach())  # the one host sync
        terms = {"nll": value, "loss": value}
        if not self.points:
            terms["bits_per_dim"] = value / (self.n_dims * math.log(2))
        return terms

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood, (N,) nats per example, of x (N, C, H, W) in [0, 1] or (N, 2).

        For images, of the 8-bit image round(255 x) under the midpoint dequantisation:
        log p(y) - D log 256 (module docstring); -log_prob / (D ln 2) is bits/dim.
        """
        return self._log_likelihood(x, noise=False)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The exact z = f(x), (N, C*H*W) for images (the image-shaped z, flattened) or (N, 2)."""
        z, _ = self.flow_forward(self.to_flow_space(x, noise=False)[0])
        return z.flatten(1)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The inverse: z (N, C*H*W) or (N, 2) -> images (N, C, H, W) in [0, 1] or points (N, 2)."""
        z = z.to(device=self.device, dtype=torch.float32).reshape(-1, *self.data.shape)
        return self.from_flow_space(self.flow_inverse(z))

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) draws from N(0, T^2 I), T the ``temperature`` hyperparameter."""
        z = torch.randn(n, self.latent.dim if self.points else self.n_dims, generator=generator, device=self.device)
        return z * self.h("temperature")

