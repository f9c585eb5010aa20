"""What every autoregressive model here shares: the pixel likelihoods, pixel-by-pixel sampling, training.

An autoregressive model factorises the likelihood of an image x of D = C*H*W values in a fixed order
as p(x) = prod_t p(x_{o(t)} | x_{o(1)}, ..., x_{o(t-1)}) (Frey 1998; Larochelle & Murray 2011), so
log p(x) is exact: the sum of D conditional log-probabilities, in nats. A subclass computes all D
conditionals in one pass, :meth:`ARModel.conditionals`, and says in which order it draws the
values, :meth:`ARModel.sampling_order`; this base does the rest.

Two pixel likelihoods (``config.likelihood``):

- ``"bernoulli"``: one logit per value, p(x_d = 1 | x_<d) = sigmoid(logit). On statically binarised
  data (``binarized:SPEC``, :mod:`engines.data.binarize`) x is 0/1 and log p(x) is the exact
  log-probability of the binary image. On grey levels the same formula, -BCE(logit, x), is a
  pseudo-likelihood (x as a soft target), still <= 0 but not a normalised density; the held-out
  figures say which (:func:`engines.metrics.likelihood.likelihood_space`). Samples are 0/1.
- ``"categorical"``: a 256-way softmax over the 8-bit grey level x8 = round(255 x) (van den Oord et
  al. 2016, PixelRNN section 5.1): log p(x) is the exact log-probability of the 8-bit image, and
  -log p(x) / (D ln 2) its bits per dimension. Samples are x8 / 255.

Sampling is sequential: D passes of the network, each drawing one value from its conditional with
uniform noise from the caller's generator (one (N,) draw per value, on the generator's device). :meth:`ARModel.draw` also completes a partly known image (the known values are kept and
the others drawn in the model's order, conditioned on every known value that comes before them in
that order) and reports progress through a callback, for the window's pixel-by-pixel view.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from engines.models.base import Engine, EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import HyperParam, LatentSpec

#: Grey levels of the categorical likelihood (8-bit images).
LEVELS = 256
#: The pixel likelihoods an autoregressive model here can have.
LIKELIHOODS = ("bernoulli", "categorical")

#: ``callback(done, total, x, drawn)`` of :meth:`ARModel.draw`: positions drawn so far of all to draw,
#: the (N, C, H, W) images so far, and the (C*H*W,) bool mask of values drawn or given.
DrawCallback = Callable[[int, int, torch.Tensor, torch.Tensor], None]


def check_likelihood(name: str, likelihood: str, allowed: tuple[str, ...] = LIKELIHOODS) -> str:
    """``likelihood`` checked against ``allowed``.

    Raises
    ------
    ConfigError
        If it is not one of them.
    """
    if likelihood not in allowed:
        raise ConfigError(f"{name}: likelihood must be one of {', '.join(allowed)}, not {likelihood!r}")
    return likelihood


class ARModel(Engine):
    """Base of the autoregressive models: subclasses build their network and implement two methods.

    Parameters
    ----------
    config : EngineConfig
        Must have ``lr`` (Adam learning rate) and ``likelihood`` ("bernoulli" or "categorical");
        ``latent_dim`` is ignored (there is no latent).
    data : DataInfo
        Images (C, H, W) in [0, 1].

    Attributes
    ----------
    shape : tuple of int
        (C, H, W).
    n_dims : int
        D = C*H*W.
    categorical : bool
        Whether the pixel likelihood is the 256-way softmax.
    latent : LatentSpec
        Empty: an autoregressive model has no latent (``decode`` raises CapabilityError).
    hyper : dict
        ``lr`` (log scale); subclasses may add their own.

    Raises
    ------
    ConfigError
        For data that are not images, or an unknown likelihood.

    Subclasses call ``super().__init__`` first, build their networks, then :meth:`finish_init`.
    """

    family = "autoregressive"

    def __init__(self, config: EngineConfig, data: DataInfo) -> None:
        if data.kind != "image":
            raise ConfigError(f"{type(self).__name__} models images pixel by pixel; {data.spec} holds "
                              f"{data.kind} (use a flow or a VAE for 2-D points)")
        check_likelihood(type(self).__name__, getattr(config, "likelihood", "bernoulli"))
        super().__init__(config, data)
        self.latent = LatentSpec.empty()
        self.shape = tuple(int(s) for s in data.shape)
        self.n_dims = int(math.prod(self.shape))
        self.categorical = config.likelihood == "categorical"
        self.k = LEVELS if self.categorical else 1
        lr = float(getattr(config, "lr", 1e-3))
        if not lr > 0:
            raise ConfigError(f"{type(self).__name__}: lr must be positive, not {lr!r}")
        self.hyper = {"lr": HyperParam("lr", 1e-3, 1e-6, 1e-1, log=True, doc="Adam learning rate").with_value(lr)}
        self.opt: torch.optim.Optimizer | None = None

    def finish_init(self) -> None:
        """Create the Adam optimiser over every parameter; call at the end of a subclass's __init__."""
        self.opt = torch.optim.Adam(self.parameters(), lr=self.h("lr"))

    # -- implemented by subclasses ----------------------------------------------------------------
    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        """The parameters of every conditional, in one pass.

        Parameters
        ----------
        x : (N, C, H, W) tensor
            The model's input: 0/1 or grey levels in [0, 1] (:meth:`inputs`).

        Returns
        -------
        (N, K, C, H, W) tensor
            Logits: K = 1 (Bernoulli) or 256 (categorical). Those of value d depend only on the
            values before d in :meth:`sampling_order`.
        """
        raise NotImplementedError

    def sampling_order(self) -> torch.Tensor:
        """(D,) int64: the flat positions (into C*H*W) in the order they are drawn; raster order by default."""
        return torch.arange(self.n_dims)

    def step_logits(self, x: torch.Tensor, position: int) -> torch.Tensor:
        """(N, K) logits of the value at flat ``position`` given x; subclasses may compute only what they need."""
        return self.conditionals(x).flatten(2)[:, :, position]

    # -- the likelihood ---------------------------------------------------------------------------
    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """x in [0, 1] on the model's device, as the network sees it (8-bit levels snapped for categorical)."""
        x = x.to(device=self.device, dtype=torch.float32)
        return torch.round(x * (LEVELS - 1)) / (LEVELS - 1) if self.categorical else x

    def pixel_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_d | x_<d) of every value of x (N, C, H, W) in [0, 1]: (N, C, H, W), nats, <= 0.

        Bernoulli: -BCE(logit, x) (exact on 0/1 data); categorical: the log-softmax at round(255 x).
        """
        x = self.inputs(x)
        logits = self.conditionals(x)
        if self.categorical:
            levels = torch.round(x * (LEVELS - 1)).long()
            return torch.log_softmax(logits, dim=1).gather(1, levels.unsqueeze(1)).squeeze(1)
        return -F.binary_cross_entropy_with_logits(logits.squeeze(1), x, reduction="none")

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x), (N,) nats per image, of x (N, C, H, W) in [0, 1] (module docstring for the space)."""
        return self.pixel_log_probs(x).flatten(1).sum(1)

    # -- hyperparameters and training ---------------------------------------------------------------
    def on_hyper_changed(self, name: str, value: float) -> None:
        if name == "lr" and self.opt is not None:
            for group in self.opt.param_groups:
                group["lr"] = value

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.opt} if self.opt is not None else {}

    def before_step(self, step: int) -> None:
        """Hook called before each training step (MADE picks its mask here); the default does nothing."""

    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One Adam step on the negative log-likelihood of the batch (B, C, H, W) in [0, 1].

        Returns
        -------
        dict of str to float
            ``nll`` (nats per image, batch mean), ``loss`` (the same) and, where the space is
            discrete (binarised data, or 8-bit levels), ``bits_per_dim`` = nll / (D ln 2).
        """
        self.train()
        self.before_step(step)
        nll = -self.pixel_log_probs(batch).flatten(1).sum(1).mean()
        self.opt.zero_grad(set_to_none=True)
        nll.backward()
        self.opt.step()
        value = float(nll.detach())  # the one host sync
        terms = {"nll": value, "loss": value}
        if self.categorical or self.data.binarized is not None:
            terms["bits_per_dim"] = value / (self.n_dims * math.log(2))
        return terms

    # -- sampling ----------------------------------------------------------------------------------
    def _draw_value(self, logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One value per row of ``logits`` (N, K) by inverse CDF at uniforms u (N,): 0/1, or a level / 255."""
        if not self.categorical:
            return (u < torch.sigmoid(logits[:, 0])).float()
        cdf = torch.softmax(logits, dim=1).cumsum(1)
        level = (cdf < u[:, None]).sum(1).clamp(max=LEVELS - 1)
        return level.float() / (LEVELS - 1)

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator | None = None, image: torch.Tensor | None = None,
             known: torch.Tensor | np.ndarray | None = None, callback: DrawCallback | None = None,
             every: int = 0, should_stop: Callable[[], bool] | None = None) -> torch.Tensor:
        """Draw ``n`` images value by value in :meth:`sampling_order`, optionally completing a known part.

        Parameters
        ----------
        n : int
            Images drawn (>= 1).
        generator : torch.Generator, optional
            Generator of the uniforms (one (n,) draw per value, in the sampling order, on its device).
        image : (1, C, H, W) or (n, C, H, W) tensor in [0, 1], optional
            Values of the known part (a single image is repeated over the n draws).
        known : (H, W) or (C, H, W) bool, optional
            True where ``image`` is kept; without it nothing is.
        callback : DrawCallback, optional
            Called every ``every`` drawn values (and after the last) with the images so far.
        every : int
            Values between two callbacks (0: only after the last).
        should_stop : callable () -> bool, optional
            Polled before each value; True stops and returns the partial images.

        Returns
        -------
        (n, C, H, W) tensor in [0, 1]
            0/1 values (Bernoulli) or levels / 255 (categorical); where stopped early, undrawn values
            are 0 (or the image's).

        Raises
        ------
        ConfigError
            ``n`` below 1, or an image or mask of the wrong shape.
        """
        if n < 1:
            raise ConfigError(f"{self.name or type(self).__name__}: draw at least one image, not {n}")
        c, h, w = self.shape
        x = torch.zeros(n, c, h, w, device=self.device)
        given = torch.zeros(self.n_dims, dtype=torch.bool)
        if known is not None:
            mask = torch.as_tensor(np.asarray(known, dtype=bool))
            if mask.shape == (h, w):
                mask = mask.expand(c, h, w)
            if mask.shape != (c, h, w):
                raise ConfigError(f"the known mask must be ({h}, {w}) or ({c}, {h}, {w}), not {tuple(mask.shape)}")
            given = mask.reshape(-1).clone()
        if image is not None:
            img = image.to(device=self.device, dtype=torch.float32)
            if img.shape[1:] != (c, h, w) or img.shape[0] not in (1, n):
                raise ConfigError(f"the image to complete must be (1, {c}, {h}, {w}), not {tuple(img.shape)}")
            x = self.inputs(img.expand(n, c, h, w)).clone() * given.view(1, c, h, w).to(self.device)
        todo = [int(p) for p in self.sampling_order() if not given[p]]
        drawn = given.clone()
        flat = x.view(n, -1)
        for i, pos in enumerate(todo):
            if should_stop is not None and should_stop():
                break
            u = torch.rand(n, generator=generator, device=generator.device if generator is not None else "cpu")
            u = u.to(self.device)
            flat[:, pos] = self._draw_value(self.step_logits(x, pos), u)
            drawn[pos] = True
            if callback is not None and ((every and (i + 1) % every == 0) or i + 1 == len(todo)):
                callback(i + 1, len(todo), x, drawn)
        return x

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1], drawn value by value (:meth:`draw`)."""
        was = self.training
        self.eval()
        try:
            return self.draw(n, generator)
        finally:
            self.train(was)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, 0): there is no latent to draw."""
        return torch.zeros(n, 0, device=self.device)
