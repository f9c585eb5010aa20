"""The Data set browser's Qt-free part: paging, the user's images, loading image files, the busy text.

:class:`BrowserState` is what :class:`~studio.features.browser.controller.BrowserController` keeps
between worker events; :func:`load_images` turns untrusted files into model inputs on a background thread.
"""

from __future__ import annotations

import math

import numpy as np

from engines.shared.datainfo import DataInfo
from engines.shared.errors import LatentStudioError
from engines.shared.image_files import load_image_file

#: Thumbnails per page.
PAGE = 48
#: Most files loaded from one drop or one "Open images...".
MAX_FILES = 32


def load_images(paths: list[str], channels: int, size: int) -> list[tuple[str, np.ndarray | None, str]]:
    """Load image files as model inputs (runs on a background thread; never raises for a bad file).

    Parameters
    ----------
    paths : list of str
        Files the user handed us (untrusted).
    channels, size : int
        The model's image channels (1 or 3) and side in pixels.

    Returns
    -------
    list of (path, image or None, error)
        ``image`` (channels, size, size) float32 in [0, 1]; where a file cannot be used, None and an
        error message that names the file (not an image, too big, missing, ...).
    """
    out: list[tuple[str, np.ndarray | None, str]] = []
    for path in paths[:MAX_FILES]:
        try:
            out.append((path, load_image_file(path, channels, size), ""))
        except LatentStudioError as exc:
            out.append((path, None, str(exc)))
        except (OSError, ValueError) as exc:  # anything Pillow lets through: still the file's fault
            out.append((path, None, f"{path}: cannot be read as an image ({exc})"))
    for path in paths[MAX_FILES:]:
        out.append((path, None, f"{path}: skipped, at most {MAX_FILES} files at a time"))
    return out


def plural(n: int, word: str) -> str:
    """``"1 image"``, ``"3 images"``."""
    return f"{n} {word}{'s' * (n != 1)}"


class BrowserState:
    """The data set shown, its pages, the user's own images and the Encode requests not yet answered.

    Attributes
    ----------
    info : DataInfo or None
        The data set of the model built (None before the first).
    user : dict of int -> (image, name)
        The user's images, (C, H, W) float32 in [0, 1], under the keys the view shows them by.
    page_wanted : int
        The page last asked for.
    encodes : dict of int -> str
        Encode request id -> what it encodes ("held-out #12", a file name), until answered.
    has_encoder : bool
        Whether the model encodes (else the worker projects, slowly: "projecting...").
    """

    def __init__(self) -> None:
        self.info: DataInfo | None = None
        self.user: dict[int, tuple[np.ndarray, str]] = {}
        self.next_key = 1
        self.page_wanted = 0
        self.encodes: dict[int, str] = {}
        self.last_tracked = 0
        self.has_encoder = False

    # -- the data set and its pages --------------------------------------------------------------
    def set_data(self, info: DataInfo, has_encoder: bool) -> bool:
        """Take a new model's data set; True when it differs from the last (the user's images are dropped)."""
        changed = self.info is None or info.spec != self.info.spec or info.shape != self.info.shape
        self.info, self.has_encoder = info, bool(has_encoder)
        if changed:
            self.user.clear()
        return changed

    def n_pages(self) -> int:
        """Pages of :data:`PAGE` thumbnails in the held-out split (0 without image data)."""
        if self.info is None or self.info.kind != "image":
            return 0
        return math.ceil(self.info.n_test / PAGE)

    def page_indices(self, page: int) -> tuple[int, list[int]]:
        """Page ``page`` clipped to the pages there are, and the held-out indices on it (none without pages)."""
        n = self.n_pages()
        if not n:
            return 0, []
        page = int(min(max(page, 0), n - 1))
        return page, list(range(page * PAGE, min((page + 1) * PAGE, self.info.n_test)))

    def labels(self, count: int, labels: np.ndarray | None) -> list[str]:
        """Captions for ``count`` examples: the class name of each label, its number, or "" without one."""
        names = self.info.class_names if self.info is not None else None
        out = []
        for k in range(count):
            y = None if labels is None or k >= len(labels) else int(labels[k])
            out.append("" if y is None else (names[y] if names and 0 <= y < len(names) else str(y)))
        return out

    # -- the user's images -----------------------------------------------------------------------
    def add_user_image(self, image: np.ndarray, name: str) -> int:
        """Keep one of the user's images; its new key."""
        key, self.next_key = self.next_key, self.next_key + 1
        self.user[key] = (image, name)
        return key

    def cannot_load(self, name: str) -> str:
        """Why files cannot be loaded now ("" when they can: a model with image data is built)."""
        if self.info is None:
            return f"Cannot use {name}: build a model first (images are resized to its input size)"
        if self.info.kind != "image":
            return f"Cannot use {name}: the data set holds 2-D points, not images"
        return ""

    # -- Encode requests -------------------------------------------------------------------------
    def track(self, request_id: int, what: str) -> bool:
        """Remember an Encode request until answered (0: nothing was sent); whether it was kept."""
        if not request_id:
            return False
        self.encodes[request_id] = what
        self.last_tracked = request_id
        return True

    def answered(self, request_id: int) -> bool:
        """Forget an answered Encode request; whether it was one of ours."""
        return self.encodes.pop(request_id, None) is not None

    def busy_text(self) -> str:
        """What the browser says while Encode requests are unanswered ("" when none)."""
        if not self.encodes:
            return ""
        verb = "encoding" if self.has_encoder else "projecting"
        return f"{verb}... {', '.join(self.encodes.values())}"

    def progress_text(self, done: int, total: int, message: str) -> str:
        """The busy text with a projection's progress appended."""
        total_text = f"/{total}" if total else ""
        return self.busy_text() + f" ({done}{total_text} {message})".replace(" )", ")")
