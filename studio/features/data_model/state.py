"""The Data & Model panel's Qt-free part: the data sets offered, the defaults suggested, the command built."""

from __future__ import annotations

from dataclasses import dataclass

from engines.shared import protocol
from engines.shared.datainfo import BUILTIN_SPECS, with_binarized

#: Spin-box value that stands for "the data set's own image size".
NATIVE_SIZE = 7
#: (latent dims, batch size) shown for images, and for the built-in 2-D mixtures (as in PacGAN's
#: 2-D experiments, Lin et al. 2018: z of width 2, batches of 100).
IMAGE_DEFAULTS, POINT_DEFAULTS = (10, 64), (2, 100)
POINT_SPECS = ("ring", "grid")
#: The architectures offered ("auto": conv for images, mlp for 2-D points).
ARCHS = ("auto", "conv", "mlp")


def builtin_specs() -> list[tuple[str, str]]:
    """The built-in data sets as (spec, description) pairs, from :data:`engines.shared.datainfo.BUILTIN_SPECS`."""
    return [(str(s), str(d)) for s, d in BUILTIN_SPECS]


def spec_for_file(path: str) -> str:
    """The data spec of a user file: ``npz:PATH`` for .npz, ``idx:PATH`` otherwise (raw or .gz IDX)."""
    return f"npz:{path}" if path.lower().endswith(".npz") else f"idx:{path}"


def spec_label(spec: str) -> str:
    """How a data spec reads in the list: the spec itself (the box shortens a long one in its middle)."""
    return spec


def defaults_for(spec: str) -> tuple[int, int]:
    """The (latent dims, batch size) that suit a data spec: :data:`POINT_DEFAULTS` for the 2-D mixtures."""
    return POINT_DEFAULTS if spec in POINT_SPECS else IMAGE_DEFAULTS


def suggest_defaults(spec: str, current: tuple[int, int]) -> tuple[int, int] | None:
    """The (latent dims, batch size) to switch to when ``spec`` is picked, or None to leave them.

    The form follows the data set only while it still shows the other kind's defaults: values the
    user changed are kept.
    """
    wanted = defaults_for(spec)
    other = IMAGE_DEFAULTS if wanted == POINT_DEFAULTS else POINT_DEFAULTS
    return wanted if tuple(current) == other else None


def image_size_value(image_size: int) -> int:
    """The spin-box value for an image size (below 8, including 0, means native)."""
    return image_size if image_size >= 8 else NATIVE_SIZE


@dataclass
class BuildForm:
    """The values of the form, Qt-free: what :meth:`command` turns into a :class:`~engines.shared.protocol.Configure`.

    ``image_size`` is the spin-box value (:data:`NATIVE_SIZE`: the data set's own size);
    ``arch_enabled`` whether the model takes an ``arch`` option; ``binarize`` asks for the statically
    binarised images (``binarized:SPEC``, for Bernoulli models; ignored for 2-D points).
    """

    data: str
    model: str
    arch: str = "auto"
    arch_enabled: bool = True
    latent_dim: int = IMAGE_DEFAULTS[0]
    image_size: int = NATIVE_SIZE
    batch_size: int = IMAGE_DEFAULTS[1]
    seed: int = 0
    binarize: bool = False
    settings: str = ""

    def command(self) -> protocol.Configure:
        """The :class:`Configure` these values describe.

        Raises
        ------
        ValueError
            ``settings`` that do not read as KEY=VALUE pairs (:func:`parse_settings`).
        """
        options = {"arch": self.arch} if self.arch_enabled and self.arch != "auto" else {}
        options.update(parse_settings(self.settings))
        return protocol.Configure(
            data=with_binarized(self.data, self.binarize and self.data not in POINT_SPECS), model=self.model, image_size=None if self.image_size == NATIVE_SIZE else self.image_size,
            latent_dim=self.latent_dim, seed=self.seed, batch_size=self.batch_size, options=options,
        )


#: Settings the form shows in their own controls (left out of the settings' list).
FORM_SETTINGS = ("latent_dim", "seed", "arch")


def parse_settings(text: str) -> dict[str, object]:
    """A model's other settings typed as ``KEY=VALUE`` pairs, separated by spaces or commas (the command line's
    ``--set``): ``"estimator=nvil persistent=true tau_min=0.3"`` -> ``{"estimator": "nvil", "persistent": True,
    "tau_min": 0.3}``. Values read as true/false, an integer, a number, or else text; the worker checks the
    keys against the model's settings and names the ones it has.

    Raises
    ------
    ValueError
        A pair without "=", or an empty key.
    """
    out: dict[str, object] = {}
    for item in text.replace(",", " ").split():
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"model settings are KEY=VALUE pairs (e.g. estimator=nvil), not {item!r}")
        low = value.lower()
        if low in ("true", "false", "yes", "no"):
            out[key] = low in ("true", "yes")
            continue
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def settings_help(config: dict | None = None) -> str:
    """The settings box's tooltip: how to write them, and a built model's settings with their values."""
    text = ("Other model settings as KEY=VALUE pairs, as the command line's --set: e.g. estimator=nvil "
            "(gumbel-vae), persistent=true (rbm), layers=2 layer_steps=2000 (dbn), learn_sigma=true (grbm), "
            "ema=true (vq-vae)")
    if config:
        pairs = [f"{k}={v}" for k, v in config.items() if k not in FORM_SETTINGS]
        text += ".\nThis model's settings now: " + ", ".join(pairs)
    return text


def ready_summary(ready: protocol.Ready) -> str:
    """The rich text shown under the form for a built model."""
    config = ready.config or {}
    arch = f", {config['arch']}" if "arch" in config else ""
    source = f"<br>from {ready.checkpoint}" if ready.checkpoint else ""
    return (f"<b>{ready.model}</b> ({ready.family}{arch}), z: {ready.latent.describe()}, on {ready.device}"
            f"<br>{ready.data_summary}{source}")


def build_reason(state: str) -> str:
    """Why "Build model" is disabled in a client state ("" when it can build)."""
    return "" if state in ("idle", "ready") else "Stop training (or start the worker) to rebuild"


def suggests_binarized(capabilities: object) -> bool:
    """Whether picking a model should tick "Binarise": it samples pixel by pixel (the Bernoulli
    autoregressive models, whose likelihood is exact on binary images)."""
    return getattr(capabilities, "sampling", "") == "autoregressive"


def latent_width_applies(capabilities: object) -> bool:
    """Whether the "Latent dims" box means anything: not for a model without a latent, nor for a flow,
    whose z has the data's own shape."""
    latent = tuple(getattr(capabilities, "latent", ()))
    return latent != ("none",) and getattr(capabilities, "encoder", "") != "exact"
