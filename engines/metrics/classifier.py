"""A small CNN that the studio trains itself on a labelled image data set, for class coverage.

Class coverage of a generative model (the "stacked MNIST" protocol of Metz, Poole, Pfau and
Sohl-Dickstein, 2017, unrolled GANs; Srivastava et al., 2017, VEEGAN; Lin, Khetan, Fanti and Oh,
2018, PacGAN) labels generated images with a classifier trained on the real data. Those papers
use a pre-trained MNIST classifier; Latent Studio works on any labelled data set the user loads,
so it trains one here, once per data set, and caches it:

``$LATENT_STUDIO_HOME/cache/classifiers/<key>.safetensors`` (weights; the manifest is also in the
safetensors metadata) and ``<key>.json`` (the same manifest, with the held-out accuracy), where
``LATENT_STUDIO_HOME`` defaults to ``~/.latent-studio`` and ``key`` hashes the data spec, the
image shape, the data set size, the class names, the training steps and seed, and
:data:`ARCH_VERSION`. Never pickle: a cache file that does not fit is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from engines.lib.checkpoint import atomic_write
from engines.data.base import Dataset
from engines.shared.errors import DataError

#: Bumped whenever :class:`SmallCNN` or the training recipe changes (invalidates the cache).
ARCH_VERSION = 1
#: Training steps (batches of :data:`BATCH_SIZE`) when none are given.
DEFAULT_STEPS = 1000
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
#: Images wider than this are average-pooled down to it before the first convolution.
MAX_SIDE = 16
_META_KEY = "latent_studio_classifier"


class SmallCNN(nn.Module):
    """Two 3x3 convolution blocks (16 and 32 channels, ReLU, 2x2 max-pool), then a 128-unit
    hidden layer and K logits.

    Parameters
    ----------
    channels : int
        Image channels C (1 or 3).
    n_classes : int
        Classes K >= 2.

    Notes
    -----
    Input (B, C, H, W) in [0, 1], any side from 8 to 64 pixels; sides above :data:`MAX_SIDE` are
    average-pooled down first, and the feature map is average-pooled to 4x4 before the linear
    layers, so one network fits every image size. Output: (B, K) logits.
    """

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, 128) hidden-layer activations (after ReLU): the studio's image features."""
        if x.shape[-1] > MAX_SIDE or x.shape[-2] > MAX_SIDE:
            x = F.adaptive_avg_pool2d(x, (min(x.shape[-2], MAX_SIDE), min(x.shape[-1], MAX_SIDE)))
        x = x - 0.5
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.adaptive_avg_pool2d(x, 4).flatten(1)
        return F.relu(self.fc1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.embed(x))


def _check_labelled(dataset: Dataset) -> int:
    info = dataset.info
    if info.kind != "image":
        raise DataError(f"{info.spec}: the coverage classifier needs images, not {info.kind}")
    if not info.class_names or len(info.class_names) < 2:
        raise DataError(f"{info.spec}: the coverage classifier needs labels with at least two classes")
    if dataset.labels(dataset.train_indices[:1]) is None:
        raise DataError(f"{info.spec}: the data set has class names but no labels")
    if len(dataset.train_indices) == 0 or len(dataset.test_indices) == 0:
        raise DataError(f"{info.spec}: too few examples to train and test a classifier")
    return len(info.class_names)


def train_classifier(
    dataset: Dataset,
    steps: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[SmallCNN, float]:
    """Train a :class:`SmallCNN` on the training split and measure it on the held-out split.

    Adam (learning rate :data:`LEARNING_RATE`), cross-entropy, batches of :data:`BATCH_SIZE`
    drawn with replacement-free reshuffling each epoch, each training image shifted by up to
    two pixels at random (with zero fill) for robustness.

    Parameters
    ----------
    dataset : Dataset
        Labelled images (N, C, H, W) in [0, 1], labels (N,) in [0, K).
    steps : int or None
        Optimisation steps; None for :data:`DEFAULT_STEPS`.
    seed : int
        Seeds the weights and the batch order (the same seed gives the same model on a device).
    device : torch.device or str
    progress : callable or None
        Called as ``progress(step, steps)`` every 50 steps and at the end.

    Returns
    -------
    model : SmallCNN
        In eval mode, on ``device``.
    held_out_accuracy : float
        Fraction in [0, 1] of the held-out split classified correctly.

    Raises
    ------
    DataError
        Not images, no labels, fewer than two classes, or an empty split.
    """
    n_classes = _check_labelled(dataset)
    steps = DEFAULT_STEPS if steps is None else int(steps)
    if steps < 1:
        raise DataError(f"{dataset.info.spec}: classifier steps must be at least 1, got {steps}")
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(dataset.info.channels, n_classes)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    rng = np.random.default_rng(seed)
    train = dataset.train_indices
    order = rng.permutation(train)
    pos = 0
    for step in range(1, steps + 1):
        if pos + BATCH_SIZE > len(order):
            order, pos = rng.permutation(train), 0
        idx = order[pos : pos + BATCH_SIZE]
        pos += BATCH_SIZE
        x = _shift(dataset.get(idx), rng)
        y = dataset.labels(idx)
        x_t = torch.as_tensor(x, dtype=torch.float32, device=device)
        y_t = torch.as_tensor(y, dtype=torch.int64, device=device)
        loss = F.cross_entropy(model(x_t), y_t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None and (step % 50 == 0 or step == steps):
            progress(step, steps)
    model.eval()
    test = dataset.test_indices
    correct = 0
    for i in range(0, len(test), 500):
        idx = test[i : i + 500]
        pred = predict_proba(model, dataset.get(idx)).argmax(axis=1)
        correct += int((pred == dataset.labels(idx)).sum())
    return model, correct / len(test)


def _shift(x: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Each image of (B, C, H, W) translated by a random (dy, dx) in [-max_shift, max_shift]."""
    out = np.zeros_like(x, dtype=np.float32)
    h, w = x.shape[-2:]
    for i, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, size=(len(x), 2))):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, :, yd, xd] = x[i, :, ys, xs]
    return out


@torch.no_grad()
def predict_proba(model: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Class probabilities of images under a trained classifier.

    Parameters
    ----------
    model : SmallCNN
        From :func:`train_classifier` or :func:`load_or_train_classifier`.
    images : (N, C, H, W) float array or tensor in [0, 1]
        On any device; moved to the model's device batch by batch.

    Returns
    -------
    (N, K) float64 ndarray
        Softmax probabilities; each row sums to 1.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.as_tensor(images[i : i + batch_size], dtype=torch.float32).to(device)
        out.append(torch.softmax(model(x).double(), dim=1).cpu().numpy())
    model.train(was_training)
    k = model.fc2.out_features if isinstance(model, SmallCNN) else 0
    return np.concatenate(out) if out else np.zeros((0, k))


def embed(model: SmallCNN, images: np.ndarray | torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """The studio's image features: (N, C, H, W) in [0, 1] -> (N, 128) float64 hidden-layer activations
    (:meth:`SmallCNN.embed`), in batches on the model's device, in eval mode, without gradients."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = torch.as_tensor(np.ascontiguousarray(images[i : i + batch_size]), dtype=torch.float32).to(device)
            out.append(model.embed(x).double().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.fc1.out_features))


def cache_dir() -> Path:
    """``$LATENT_STUDIO_HOME/cache/classifiers`` (``LATENT_STUDIO_HOME`` defaults to ``~/.latent-studio``)."""
    home = os.environ.get("LATENT_STUDIO_HOME") or os.path.join(os.path.expanduser("~"), ".latent-studio")
    return Path(home) / "cache" / "classifiers"


def cache_key(dataset: Dataset, steps: int | None = None, seed: int = 0) -> str:
    """A 20-hex-digit key of the data spec, image shape, size, class names, steps, seed and arch."""
    info = dataset.info
    ident = {
        "spec": info.spec,
        "shape": list(info.shape),
        "size": info.size,
        "class_names": list(info.class_names or ()),
        "steps": DEFAULT_STEPS if steps is None else int(steps),
        "seed": int(seed),
        "arch": ARCH_VERSION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()[:20]


def _load_cached(path: Path, dataset: Dataset, n_classes: int, device: torch.device) -> tuple[SmallCNN, float] | None:
    """The cached model and its accuracy, or None where the file is missing or does not fit."""
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[_META_KEY])
        tensors = load_file(str(path), device="cpu")
        accuracy = float(meta["held_out_accuracy"])
        if meta.get("arch") != ARCH_VERSION or meta.get("spec") != dataset.info.spec:
            return None
        model = SmallCNN(dataset.info.channels, n_classes)
        expected = model.state_dict()
        if set(tensors) != set(expected) or any(tensors[k].shape != v.shape for k, v in expected.items()):
            return None
        model.load_state_dict(tensors)
    except Exception:  # a damaged cache file is not the user's problem: retrain and overwrite it
        return None
    if not 0.0 <= accuracy <= 1.0:
        return None
    return model.to(device).eval(), accuracy


def load_or_train_classifier(
    dataset: Dataset,
    steps: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[SmallCNN, float]:
    """The cached classifier for ``dataset`` (see the module docstring), trained and cached if absent.

    Parameters and returns as :func:`train_classifier`. A cache that cannot be written (read-only
    home) is skipped silently: the model is still returned.

    Raises
    ------
    DataError
        As :func:`train_classifier`.
    """
    n_classes = _check_labelled(dataset)
    device = torch.device(device)
    key = cache_key(dataset, steps, seed)
    path = cache_dir() / f"{key}.safetensors"
    cached = _load_cached(path, dataset, n_classes, device)
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    model, accuracy = train_classifier(dataset, steps, seed, device, progress)
    meta = {
        "arch": ARCH_VERSION,
        "spec": dataset.info.spec,
        "shape": list(dataset.info.shape),
        "size": dataset.info.size,
        "class_names": list(dataset.info.class_names or ()),
        "steps": DEFAULT_STEPS if steps is None else int(steps),
        "seed": int(seed),
        "held_out_accuracy": accuracy,
        "n_held_out": int(len(dataset.test_indices)),
        "train_seconds": time.perf_counter() - t0,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={_META_KEY: json.dumps(meta)}))
        text = json.dumps(meta, indent=1) + "\n"
        atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    except OSError:
        pass
    return model, accuracy


