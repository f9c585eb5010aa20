"""Direction sets: named unit vectors in z with their scale, saved and loaded as JSON beside a checkpoint.

A direction set is what ``latent-studio directions`` writes and the Directions tab saves and loads
(``RUN/directions.json`` by default). Format, version :data:`FORMAT_VERSION`::

    {"latent_studio_directions": 1, "model": "beta-vae", "latent_dim": 10, "step": 3000,
     "method": "pca" | "ica" | "attribute" | "groups" | "local" | "class",
     "source": "posterior means of 1000 held-out images",
     "directions": [{"name": "PC1", "vector": [D floats, unit length], "scale": 0.93,
                     "explained": 0.31 or null}, ...]}

``scale`` is the spread of the latents along the direction (a standard deviation, or for a mean
difference its length), so a coefficient of 1 moves z by one of those; ``explained`` the share of the
latents' variance the direction accounts for (principal and independent components), else null.
Files are untrusted: the reader caps the size and checks every field before anything is built.

numpy and the standard library only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines.shared.errors import ConfigError

FORMAT_VERSION = 1
#: Largest direction-set file read, bytes.
MAX_BYTES = 16 << 20
#: Most directions in one set.
MAX_SET = 64
#: Widest z a set may hold (a flow's z on 64x64 RGB images is 12,288).
MAX_DIM = 65536
METHODS = ("pca", "ica", "attribute", "groups", "local", "class")


@dataclass
class DirectionSet:
    """k directions in a model's z.

    Attributes
    ----------
    vectors : ndarray
        (k, D) float32, each row of unit length.
    scales : ndarray
        (k,) float32 > 0: the latents' spread along each direction (a slider's unit).
    names : list of str
    explained : ndarray
        (k,) float32 share of variance in [0, 1], NaN where it does not apply.
    method, source, model : str
    step : int
        The training step of the weights the set was found on.
    """

    vectors: np.ndarray
    scales: np.ndarray
    names: list[str]
    explained: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    method: str = "pca"
    source: str = ""
    model: str = ""
    step: int = 0

    def __post_init__(self) -> None:
        v = np.asarray(self.vectors, np.float32)
        if v.ndim != 2 or not 1 <= len(v) <= MAX_SET or not 1 <= v.shape[1] <= MAX_DIM:
            raise ConfigError(f"directions must be (k, D) with 1 <= k <= {MAX_SET} and 1 <= D <= {MAX_DIM}, not {v.shape}")
        s = np.asarray(self.scales, np.float32).reshape(-1)
        e = np.asarray(self.explained, np.float32).reshape(-1)
        if not len(e):
            e = np.full(len(v), np.nan, np.float32)
        if len(s) != len(v) or len(e) != len(v) or len(self.names) != len(v):
            raise ConfigError(f"{len(v)} directions need as many scales, names and explained shares "
                              f"(got {len(s)}, {len(self.names)}, {len(e)})")
        if not np.isfinite(v).all() or not np.isfinite(s).all() or (s <= 0).any():
            raise ConfigError("directions and scales must be finite, and scales > 0")
        norms = np.linalg.norm(v.astype(np.float64), axis=1)
        if (norms < 1e-6).any():
            raise ConfigError("a direction has zero length")
        self.vectors = (v / norms[:, None]).astype(np.float32)
        self.scales, self.explained, self.names = s, e, [str(n) for n in self.names]

    @property
    def dim(self) -> int:
        """D, the width of z."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.vectors)

    def move(self, base: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
        """(D,) float32 ``base + sum_i c_i scale_i v_i``.

        Raises
        ------
        ConfigError
            When base is not (D,) or there is not one coefficient per direction.
        """
        b = np.asarray(base, np.float64).reshape(-1)
        c = np.asarray(coefficients, np.float64).reshape(-1)
        if len(b) != self.dim or len(c) != len(self):
            raise ConfigError(f"a move needs z of {self.dim} and {len(self)} coefficients, not {len(b)} and {len(c)}")
        return (b + (c * self.scales) @ self.vectors).astype(np.float32)

    def to_json(self) -> dict:
        """The set as the JSON object of the module docstring."""
        return {"latent_studio_directions": FORMAT_VERSION, "model": self.model, "latent_dim": self.dim,
                "step": int(self.step), "method": self.method, "source": self.source,
                "directions": [{"name": n, "vector": [float(x) for x in v], "scale": float(s),
                                "explained": None if not math.isfinite(float(e)) else float(e)}
                               for n, v, s, e in zip(self.names, self.vectors, self.scales, self.explained)]}

    @classmethod
    def from_json(cls, d: object, where: str = "direction set") -> "DirectionSet":
        """Check and build a set from its JSON object.

        Raises
        ------
        ConfigError
            Naming ``where`` and the first field that is missing, of the wrong type or out of range.
        """
        if not isinstance(d, dict) or d.get("latent_studio_directions") != FORMAT_VERSION:
            raise ConfigError(f"{where}: not a direction set (expected \"latent_studio_directions\": {FORMAT_VERSION})")
        rows = d.get("directions")
        if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_SET:
            raise ConfigError(f"{where}: 'directions' must be a list of 1 to {MAX_SET} entries")
        dim = d.get("latent_dim")
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
            raise ConfigError(f"{where}: 'latent_dim' must be an integer in [1, {MAX_DIM}], not {dim!r}")
        vectors, scales, names, explained = [], [], [], []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ConfigError(f"{where}: directions[{i}] must be an object")
            v = row.get("vector")
            if not isinstance(v, list) or len(v) != dim or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise ConfigError(f"{where}: directions[{i}].vector must be a list of {dim} numbers")
            s, e = row.get("scale"), row.get("explained")
            if isinstance(s, bool) or not isinstance(s, (int, float)):
                raise ConfigError(f"{where}: directions[{i}].scale must be a number")
            if e is not None and (isinstance(e, bool) or not isinstance(e, (int, float))):
                raise ConfigError(f"{where}: directions[{i}].explained must be a number or null")
            name = row.get("name", f"direction {i + 1}")
            if not isinstance(name, str) or len(name) > 200:
                raise ConfigError(f"{where}: directions[{i}].name must be a string of at most 200 characters")
            vectors.append(v)
            scales.append(s)
            names.append(name)
            explained.append(np.nan if e is None else e)
        text = {k: d.get(k, "") for k in ("model", "method", "source")}
        if not all(isinstance(t, str) and len(t) <= 500 for t in text.values()):
            raise ConfigError(f"{where}: model, method and source must be strings")
        step = d.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ConfigError(f"{where}: 'step' must be a non-negative integer")
        try:
            return cls(np.asarray(vectors, np.float64), np.asarray(scales, np.float64), names,
                       np.asarray(explained, np.float64), text["method"] or "pca", text["source"], text["model"], step)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None

    def write(self, path: str | Path) -> Path:
        """Write the set as JSON to ``path``; the path."""
        p = Path(path)
        p.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return p

    @classmethod
    def read(cls, path: str | Path) -> "DirectionSet":
        """Read and check a set written by :meth:`write`.

        Raises
        ------
        ConfigError
            A file that cannot be read, is larger than :data:`MAX_BYTES`, is not JSON, or fails a check (named).
        """
        p = Path(path)
        try:
            size = p.stat().st_size
            if size > MAX_BYTES:
                raise ConfigError(f"{p}: {size} bytes is more than a direction set may hold ({MAX_BYTES})")
            d = json.loads(p.read_text(encoding="utf-8"))
        except ConfigError:
            raise
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ConfigError(f"{p}: not a readable direction set ({type(e).__name__}: {str(e)[:200]})") from None
        return cls.from_json(d, str(p))


def arithmetic(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Latent arithmetic ``a - b + c`` (White 2016, "Sampling generative networks"): (D,) float32.

    E.g. a = smiling woman, b = neutral woman, c = neutral man gives a smiling man where the latent
    space is linear enough.

    Raises
    ------
    ConfigError
        When the three are not vectors of the same width.
    """
    va, vb, vc = (np.asarray(v, np.float64).reshape(-1) for v in (a, b, c))
    if not len(va) == len(vb) == len(vc):
        raise ConfigError(f"a - b + c needs three z of one width, not {len(va)}, {len(vb)} and {len(vc)}")
    return (va - vb + vc).astype(np.float32)
