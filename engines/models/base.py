"""The Engine contract that every model family implements (see DESIGN.md, "Engines").

An engine is a :class:`torch.nn.Module` that owns its networks and optimisers, trains itself one
step at a time, and answers the latent-space questions the studio asks (decode, encode, sample,
log_prob). The trainer and the worker only ever talk to this contract.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from engines.shared.datainfo import DataInfo
from engines.shared.capabilities import Capabilities, CapabilityError  # noqa: F401 - CapabilityError: the contract's error
from engines.shared.errors import ConfigError
from engines.shared.registry import capabilities_of_class
from engines.shared.spec import HyperParam, LatentSpec


@dataclass
class EngineConfig:
    """Base of every engine's config dataclass. Subclasses add their own fields with defaults.

    Attributes
    ----------
    latent_dim : int
        Width of z.
    seed : int
        Seed for weight initialisation.
    """

    latent_dim: int = 10
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Engine(nn.Module):
    """Base class of every model in the registry.

    Subclasses set the class attributes, build their networks in ``__init__`` from ``config`` and
    ``data`` (a :class:`DataInfo`), set ``self.latent`` and ``self.hyper``, and implement the
    methods below. Images are (N, C, H, W) float in [0, 1]; points are (N, 2).

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"beta-vae"``.
    family : {"vae", "gan", "flow", "autoregressive", "energy"}
    latent : LatentSpec
        The latent space; z has shape (N, latent.dim).
    hyper : dict of str to HyperParam
        Live-tunable hyperparameters and their current values.
    capabilities : Capabilities
        What it declares it can do: its registry line's (:mod:`engines.shared.capabilities`), or the
        class attribute ``declared`` for an engine that is not registered (a test's). Conditional
        engines (``capabilities.conditioning == "labels"``) take ``(x, y)`` batches with class
        labels y (B,) int64 in :meth:`training_step` instead of x alone. Methods of a capability
        the engine does not declare raise :class:`CapabilityError`.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    declared: ClassVar[Capabilities | None] = None

    def __init__(self, config: EngineConfig, data: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.data = data
        self.latent: LatentSpec = LatentSpec.gaussian(config.latent_dim)
        self.hyper: dict[str, HyperParam] = {}
        self.capabilities: Capabilities = capabilities_of_class(type(self))

    # -- hyperparameters -----------------------------------------------------------------------
    def set_hyper(self, name: str, value: float) -> float:
        """Change a live hyperparameter; returns the value as stored.

        Subclasses that cache a hyperparameter elsewhere (an optimiser's learning rate) override
        :meth:`on_hyper_changed`.

        Raises
        ------
        ConfigError
            Unknown name, or a value outside the parameter's range.
        """
        if name not in self.hyper:
            raise ConfigError(f"{self.name} has no live hyperparameter {name!r}; it has {sorted(self.hyper)}")
        self.hyper[name] = self.hyper[name].with_value(value)
        self.on_hyper_changed(name, self.hyper[name].value)
        return self.hyper[name].value

    def h(self, name: str) -> float:
        """Current value of a live hyperparameter."""
        return self.hyper[name].value

    def on_hyper_changed(self, name: str, value: float) -> None:
        """Hook called after :meth:`set_hyper`; the default does nothing."""

    # -- the contract ------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One optimisation step on a batch (B, C, H, W) in [0, 1] or (B, 2).

        Returns
        -------
        dict of str to float
            Named loss terms of this step (e.g. ``recon``, ``kl``, ``kl/z3``), as Python floats.
        """
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples from the model: (n, C, H, W) in [0, 1], or (n, 2) points."""
        z = self.prior_sample(n, generator)
        return self.decode(z)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, latent.dim) draws from the prior; standard normal by default."""
        return torch.randn(n, self.latent.dim, generator=generator, device=self.device)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Map z (N, latent.dim) to data space: (N, C, H, W) in [0, 1] or (N, 2).

        Raises
        ------
        CapabilityError
            For a model without a latent (``latent.dim == 0``, an autoregressive model): it samples
            pixel by pixel instead (:meth:`sample`).
        """
        if self.latent.dim == 0:
            raise CapabilityError(f"{self.name or type(self).__name__} has no latent to decode, traverse or "
                                  f"interpolate in (it declares {self.capabilities.summary()}): it draws its "
                                  f"images pixel by pixel, so sample it instead (latent-studio sample, or the Pixels tab)")
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean (amortised) or exact z (N, latent.dim) of data x (N, C, H, W) in [0, 1] or (N, 2).

        Raises
        ------
        CapabilityError
            Unless the engine declares an encoder.
        """
        self.capabilities.require("encoder", self.name or type(self).__name__)
        raise NotImplementedError(f"{type(self).__name__} declares an encoder but does not implement encode")

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-likelihood, or the declared lower bound, of x: (N,) in nats per example.

        Raises
        ------
        CapabilityError
            Unless the engine declares a likelihood.
        """
        self.capabilities.require("likelihood", self.name or type(self).__name__)
        raise NotImplementedError(f"{type(self).__name__} declares a likelihood but does not implement log_prob")

    def latent_features(self, z: torch.Tensor) -> torch.Tensor | None:
        """Activations (N, F) that z (N, latent.dim) produces in the first layer of the decoder, for finding
        directions in a model without an encoder (GANSpace, Harkonen et al. 2020); None by default (the
        latents of encoded images are used instead)."""
        return None

    def held_out_terms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        """Extra curves measured on the trainer's fixed held-out probe (x: (N, C, H, W) in [0, 1]) beside the
        held-out likelihood, e.g. an RBM's free energy of held-out and training data, or a second model's ELBO;
        name -> value (nats per example). Called under ``torch.no_grad`` in eval mode; none by default."""
        return {}

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        """The engine's optimisers by name, for checkpoints. Subclasses return theirs."""
        return {}

    @property
    def device(self) -> torch.device:
        try:
            return next(self.parameters()).device
        except StopIteration:
            return torch.device("cpu")
