"""The Helmholtz machine: a sigmoid belief net trained by wake-sleep, beside a twin trained on the ELBO by NVIL.

The generative model p is a sigmoid belief net (Neal 1992) of binary stochastic layers, top-down: a top layer z of
``latent_dim`` units with a factorised Bernoulli prior of learnt logits, an optional lower layer h of ``hidden``
units, and Bernoulli pixels v,

    p(z_k = 1) = sigmoid(a_k),   p(h_j = 1 | z) = sigmoid(b_j + W[j, :].z),   p(v_i = 1 | h) = sigmoid(c_i + U[i, :].h).

The recognition model q mirrors it bottom-up with its own weights, q(h | v) q(z | h), each a factorised sigmoid
layer. Each layer's log-probability is a sum of Bernoulli terms, nats.

Two copies of the same networks, from the same initial weights, train side by side on the same batches, each with
its own Adam (the live ``lr`` applies to both):

- wake-sleep (Hinton, Dayan, Frey & Neal 1995), the engine the studio shows: the wake phase samples (h, z) ~ q
  from the batch and ascends log p(v, h, z) in the generative weights; the sleep phase draws a dream
  (z, h, v) ~ p and ascends log q(h, z | v) in the recognition weights. Each phase is a maximum-likelihood
  step for one network on the other's samples; neither follows the gradient of a bound on log p(v) (the sleep
  phase minimises KL(p || q), not the ELBO's KL(q || p));
- the twin maximises the ELBO, E_q[log p(v, h, z) - log q(h, z | v)], with the score-function gradient for q
  made usable by NVIL (Mnih & Gregor 2014, who compare it with wake-sleep on this very model): each recognition
  layer's learning signal (the ELBO's terms that depend on that layer's sample, "local learning signals") has a
  learnt input-dependent baseline subtracted, is centred by a running mean and divided by max(1, running std).

``log_prob`` is the wake-sleep machine's single-sample ELBO and :meth:`Helmholtz.held_out_terms` the twin's, so
the trainer's held-out curves ``held_out_neg_elbo`` and ``held_out_neg_elbo_vae`` contrast the two objectives.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engines.models.base import Engine, EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import HyperParam, LatentDim, LatentSpec


@dataclass
class HelmholtzConfig(EngineConfig):
    """Settings of :class:`Helmholtz`.

    Attributes
    ----------
    latent_dim : int
        Binary units of the top layer z.
    hidden : int
        Binary units of the lower stochastic layer h (0: one stochastic layer, z directly above the pixels).
    lr : float
        Adam learning rate of both machines, live in [1e-5, 0.1].
    baseline_hidden : int
        Tanh units of NVIL's input-dependent baseline, one small network per recognition layer.
    centring_decay : float
        Decay in [0, 1) of NVIL's running mean and variance of each learning signal.
    likelihood : {"bernoulli"}
        Pixel likelihood (exact on binarised images, a pseudo-likelihood on grey levels).
    """

    latent_dim: int = 64
    hidden: int = 0
    lr: float = 3e-3
    baseline_hidden: int = 100
    centring_decay: float = 0.8
    likelihood: str = "bernoulli"


class BeliefNet(nn.Module):
    """A sigmoid belief net p and its recognition net q over binary layers of widths ``sizes`` (bottom-up).

    A list of states ``s`` holds one (N, sizes[i]) tensor of {0, 1} per layer, ``s[0]`` the pixels (N, V) and
    ``s[-1]`` the top layer z.

    Attributes
    ----------
    prior : Parameter (sizes[-1],)
        Logits of p(z).
    gen : ModuleList of Linear
        ``gen[i]`` maps s[i + 1] to the logits of p(s[i] | s[i + 1]).
    rec : ModuleList of Linear
        ``rec[i]`` maps s[i] to the logits of q(s[i + 1] | s[i]).
    """

    def __init__(self, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        self.prior = nn.Parameter(torch.zeros(self.sizes[-1]))
        self.gen = nn.ModuleList(nn.Linear(self.sizes[i + 1], self.sizes[i]) for i in range(len(sizes) - 1))
        self.rec = nn.ModuleList(nn.Linear(self.sizes[i], self.sizes[i + 1]) for i in range(len(sizes) - 1))

    def generative_parameters(self) -> list[nn.Parameter]:
        return [self.prior, *self.gen.parameters()]

    def recognise(self, v: torch.Tensor, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """States [v, h, z] (or [v, z]) with every layer above v sampled from q, bottom-up; no gradient."""
        states = [v]
        with torch.no_grad():
            for layer in self.rec:
                states.append(bernoulli(torch.sigmoid(layer(states[-1])), generator))
        return states

    def dream(self, n: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """States [v, h, z] of ``n`` ancestral samples of p, pixels included; no gradient."""
        with torch.no_grad():
            states = [bernoulli(torch.sigmoid(self.prior).expand(n, -1), generator)]
            for layer in reversed(self.gen):
                states.insert(0, bernoulli(torch.sigmoid(layer(states[0])), generator))
        return states

    def log_p_terms(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """[log p(v | s1), ..., log p(s_L-1 | z), log p(z)]: len(states) tensors (N,), nats."""
        terms = [bernoulli_log_prob(layer(states[i + 1]), states[i]) for i, layer in enumerate(self.gen)]
        return [*terms, bernoulli_log_prob(self.prior.expand_as(states[-1]), states[-1])]

    def log_q_terms(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """[log q(s1 | v), ..., log q(z | s_L-1)]: len(states) - 1 tensors (N,), nats."""
        return [bernoulli_log_prob(layer(states[i]), states[i + 1]) for i, layer in enumerate(self.rec)]

    def elbo(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Single-sample ELBO log p(v, h, z) - log q(h, z | v), (N,) nats, for pixels v (N, V)."""
        states = self.recognise(v, generator)
        return sum(self.log_p_terms(states)) - sum(self.log_q_terms(states))

    def up(self, v: torch.Tensor) -> torch.Tensor:
        """q's top-layer probabilities (N, sizes[-1]) in [0, 1], each lower layer replaced by its probabilities."""
        for layer in self.rec:
            v = torch.sigmoid(layer(v))
        return v

    def down(self, z: torch.Tensor, generator: torch.Generator | None = None, sample: bool = False) -> torch.Tensor:
        """Pixel means p(v = 1 | s1) (N, V) of top states z (N, sizes[-1]); the layers between are sampled
        (``sample``, with ``generator``) or replaced by their probabilities (mean field)."""
        for i, layer in enumerate(reversed(self.gen)):
            z = torch.sigmoid(layer(z))
            if sample and i < len(self.gen) - 1:
                z = bernoulli(z, generator)
        return z


class Helmholtz(Engine):
    """A Helmholtz machine trained by wake-sleep beside its NVIL-trained twin (module docstring).

    Parameters
    ----------
    config : HelmholtzConfig
    data : DataInfo
        Images (C, H, W) in [0, 1]; grey values are read as Bernoulli means (binarised data is what the model
        describes: see ``binarized:SPEC``).

    Attributes
    ----------
    ws : BeliefNet
        The machine trained by wake-sleep: what decode, encode, sample and log_prob use.
    twin : BeliefNet
        The same networks from the same initial weights, trained on the ELBO by NVIL.
    baselines : ModuleList
        NVIL's baseline b(s[i]) (N, 1) nats for recognition layer i, trained by regression on its signal.
    signal_mean, signal_var : buffers (L,)
        NVIL's running mean and variance of each layer's learning signal less its baseline, nats and nats^2.

    Raises
    ------
    ConfigError
        Non-image data, or a setting out of range.
    """

    family = "vae"
    config_class = HelmholtzConfig

    def __init__(self, config: HelmholtzConfig, data: DataInfo) -> None:
        super().__init__(config, data)
        if data.kind != "image":
            raise ConfigError("a Helmholtz machine models images (binary pixels); use an image data set, "
                              "e.g. binarized:digits")
        if config.likelihood != "bernoulli":
            raise ConfigError(f"helmholtz: the pixels are Bernoulli, not {config.likelihood!r}")
        for name, lo, hi in (("latent_dim", 1, 4096), ("hidden", 0, 16384), ("baseline_hidden", 1, 4096)):
            if not lo <= int(getattr(config, name)) <= hi:
                raise ConfigError(f"helmholtz: {name} must be in [{lo}, {hi}], not {getattr(config, name)}")
        if not 0.0 <= config.centring_decay < 1.0:
            raise ConfigError(f"helmholtz: centring_decay must be in [0, 1), not {config.centring_decay}")
        self.shape = tuple(data.shape)
        sizes = (int(math.prod(data.shape)), *((config.hidden,) if config.hidden else ()), config.latent_dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.ws = BeliefNet(sizes)
            self.baselines = nn.ModuleList(
                nn.Sequential(nn.Linear(n, config.baseline_hidden), nn.Tanh(), nn.Linear(config.baseline_hidden, 1))
                for n in sizes[:-1])
        self.twin = copy.deepcopy(self.ws)  # same initial weights, separate parameters
        self.register_buffer("signal_mean", torch.zeros(len(sizes) - 1))
        self.register_buffer("signal_var", torch.ones(len(sizes) - 1))
        self.latent = LatentSpec(tuple(LatentDim(f"h{j}", "binary", 0.0, 1.0) for j in range(config.latent_dim)))
        self.hyper = {
            "lr": HyperParam("lr", 3e-3, 1e-5, 1e-1, log=True, doc="Adam learning rate of both machines")
            .with_value(config.lr),
        }
        self.opt_ws = torch.optim.Adam(self.ws.parameters(), lr=config.lr)
        self.opt_vae = torch.optim.Adam([*self.twin.parameters(), *self.baselines.parameters()], lr=config.lr)

    # -- hyperparameters and optimisers ---------------------------------------------------------
    def on_hyper_changed(self, name: str, value: float) -> None:
        if name == "lr":
            for opt in (self.opt_ws, self.opt_vae):
                for group in opt.param_groups:
                    group["lr"] = value

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam_ws": self.opt_ws, "adam_vae": self.opt_vae}

    # -- training -------------------------------------------------------------------------------
    def wake_sleep_step(self, v: torch.Tensor) -> dict[str, float]:
        """One wake and one sleep update of :attr:`ws` on pixels v (B, V); the terms of :meth:`training_step`."""
        states = self.ws.recognise(v)
        log_p = sum(self.ws.log_p_terms(states))  # wake: gradient reaches the generative weights only
        dream = self.ws.dream(len(v))
        log_q_dream = sum(self.ws.log_q_terms(dream))  # sleep: the recognition weights only
        loss = -(log_p.mean() + log_q_dream.mean())
        self.opt_ws.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_ws.step()
        with torch.no_grad():
            neg_elbo = -(log_p - sum(self.ws.log_q_terms(states)))
        return {"wake": float(-log_p.detach().mean()), "sleep": float(-log_q_dream.detach().mean()),
                "neg_elbo_ws": float(neg_elbo.mean())}

    def nvil_step(self, v: torch.Tensor) -> dict[str, float]:
        """One NVIL step of :attr:`twin` (and the baselines) on the ELBO of pixels v (B, V).

        Recognition layer i's learning signal is the part of the ELBO that depends on its sample s[i + 1],
        l_i = sum_{j >= i} log p(s[j] | s[j + 1]) + log p(z) - sum_{j >= i} log q(s[j + 1] | s[j]) (nats); the
        gradient of q is E[(l_i - b_i(s[i]) - mean_i) / max(1, std_i) grad log q(s[i + 1] | s[i])], and b_i
        regresses on l_i - mean_i.
        """
        states = self.twin.recognise(v)
        log_p, log_q = self.twin.log_p_terms(states), self.twin.log_q_terms(states)
        decay = self.config.centring_decay
        surrogate, mse = v.new_zeros(()), v.new_zeros(())
        for i, base in enumerate(self.baselines):
            signal = (sum(log_p[i:]) - sum(log_q[i:])).detach()
            b = base(states[i]).squeeze(1)
            with torch.no_grad():
                residual = signal - b
                self.signal_mean[i] = decay * self.signal_mean[i] + (1 - decay) * residual.mean()
                self.signal_var[i] = decay * self.signal_var[i] + (1 - decay) * residual.var(unbiased=False)
                scaled = (residual - self.signal_mean[i]) / self.signal_var[i].sqrt().clamp_min(1.0)
            surrogate = surrogate + (scaled * log_q[i]).mean()
            mse = mse + ((signal - self.signal_mean[i] - b) ** 2).mean()
        elbo = sum(log_p) - sum(log_q)
        loss = -(sum(log_p).mean() + surrogate) + mse
        self.opt_vae.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_vae.step()
        return {"neg_elbo_vae": float(-elbo.detach().mean()), "baseline_mse": float(mse.detach())}

    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """A wake-sleep step of :attr:`ws` and an NVIL step of :attr:`twin` on the same batch (B, C, H, W) in [0, 1].

        Returns
        -------
        dict of str to float
            ``wake`` (-log p(v, h, z) of the batch with (h, z) ~ q), ``sleep`` (-log q(h, z | v) of the dreams),
            ``neg_elbo_ws`` and ``neg_elbo_vae`` (each machine's single-sample -ELBO of the batch), all nats per
            image, and ``baseline_mse`` (NVIL's baseline regression, summed over layers, nats^2).
        """
        v = batch.flatten(1).to(self.ws.prior)
        return {**self.wake_sleep_step(v), **self.nvil_step(v)}

    # -- the latent -----------------------------------------------------------------------------
    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Binary top states z (n, latent_dim) in {0, 1} from the prior p(z)."""
        with torch.no_grad():
            return bernoulli(torch.sigmoid(self.ws.prior).expand(n, -1), generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel means (N, C, H, W) in [0, 1] of top states z (N, latent_dim) in [0, 1]; a lower layer h is replaced
        by its probabilities p(h = 1 | z) (mean field: deterministic, not the exact E[v | z])."""
        with torch.no_grad():
            return self.ws.down(z.to(self.ws.prior)).view(-1, *self.shape)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral samples: z from the prior, h ~ p(h | z), both drawn with ``generator``; the pixel means
        p(v = 1 | h) (n, C, H, W) in [0, 1]."""
        return self.ws.down(self.prior_sample(n, generator), generator, sample=True).view(-1, *self.shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """q's top-layer probabilities (N, latent_dim) in [0, 1] of images x (N, C, H, W), every layer below replaced
        by its probabilities (deterministic)."""
        with torch.no_grad():
            return self.ws.up(x.flatten(1).to(self.ws.prior))

    # -- the likelihood -------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The wake-sleep machine's single-sample ELBO (N,) nats of images x (N, C, H, W): a lower bound on
        log p(x), estimated."""
        with torch.no_grad():
            return self.ws.elbo(x.flatten(1).to(self.ws.prior), generator)

    def held_out_terms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        """``held_out_neg_elbo_vae``: the NVIL twin's single-sample -ELBO of x (N, C, H, W), mean nats per image."""
        with torch.no_grad():
            return {"held_out_neg_elbo_vae": float(-self.twin.elbo(x.flatten(1).to(self.twin.prior), generator).mean())}


def bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary draws (same shape as p, p's dtype) of Bernoulli means p in [0, 1]."""
    return (torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype) < p).to(p.dtype)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_i log Bernoulli(x_i; sigmoid(logits_i)) over the last dimension: (N,) nats for (N, D) tensors."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
