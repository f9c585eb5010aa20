"""The Morph tab's glue and maths: take chosen latent dimensions (or whole categorical codes) from B.

A morph keeps image A's latent and takes a chosen subset of dimensions from image B, each with a
strength in [0, 1]: ``z = z_a + m * s * (z_b - z_a)`` elementwise, the numpy twin of
:func:`engines.lib.latent.morph` (the window never imports torch). For a conditional model, taking
only the class block from B changes the class and keeps the noise (content vs style). The style
grid follows the figure of Zhu, Xu, Zhang, Shen and Wong (2020), "Semantically multi-modal image
synthesis" (GroupDNet, CVPR): rows keep a content latent's unchecked dimensions, columns give
their checked dimensions.

:class:`MorphController` sits between the window's client and :class:`~studio.panels.morph.MorphView`:
A and B come from held-out examples or the user's images (Encode, view ``"morph"``), the sliders or
the prior; the result and the grid are decoded live (views ``"morph"`` and ``"morph-grid"``, the
newest request wins); exports (PNG of the result or the grid, GIF/MP4 of A morphing into the
result) are rendered by the worker from the same latents and come with a sidecar that
``latent-studio render`` reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.imaging import plot_points, tile
from engines.shared.spec import LatentSpec
from studio.client import MODEL_STATES
from studio.panels.explore import factor_of
from studio.panels.morph import MorphView
from studio.state import prior_draw

if TYPE_CHECKING:
    from studio.window import MainWindow

#: Frames of an exported morph animation (strength ramping from 0 to the chosen values) and its rate.
MORPH_FRAMES, MORPH_FPS = 24, 12
#: Longest side of exported morph pictures and frames, px (nearest-neighbour upscaling).
EXPORT_SIZE = 512
#: Most extra content rows and extra style columns of the grid.
MAX_GRID = 6


def morph_np(z_a: np.ndarray, z_b: np.ndarray, strengths: np.ndarray | float) -> np.ndarray:
    """Take chosen dimensions from ``z_b``: ``z_a + s * (z_b - z_a)``, exact at s = 0 and s = 1.

    The same arithmetic as :func:`engines.lib.latent.morph` (``torch.lerp``: below s = 0.5 it adds to
    z_a, from 0.5 it subtracts from z_b, so both ends are exact).

    Parameters
    ----------
    z_a, z_b : (D,) or (N, D) float array
        The latent kept and the latent taken from.
    strengths : (D,) float array or float, in [0, 1]
        Per-dimension strength: a checkbox mask times a slider value.

    Returns
    -------
    float32 array shaped like ``z_a``.

    Raises
    ------
    ValueError
        Shapes that differ, a strength count that is not D, or strengths outside [0, 1].
    """
    a, b = np.asarray(z_a, np.float32), np.asarray(z_b, np.float32)
    if a.shape != b.shape:
        raise ValueError(f"morph: z_a {a.shape} and z_b {b.shape} differ in shape")
    s = np.asarray(strengths, np.float32)
    if s.ndim > 0 and s.shape[-1] != a.shape[-1]:
        raise ValueError(f"morph: {s.shape[-1]} strengths for {a.shape[-1]} dimensions")
    if not bool(((s >= 0) & (s <= 1)).all()):
        raise ValueError("morph: strengths must lie in [0, 1]")
    s = np.broadcast_to(s, a.shape)
    diff = b - a
    return np.where(s < 0.5, a + s * diff, b - diff * (np.float32(1.0) - s)).astype(np.float32)


def morph_rows(spec: LatentSpec) -> list[tuple[str, list[int]]]:
    """The rows of the Morph tab: one per continuous dimension, one per categorical block.

    Returns
    -------
    list of (name, indices)
        In latent order (a block at its first dimension): ``("z3", [3])`` or ``("class", [8, ..., 17])``.
    """
    rows: list[tuple[str, list[int]]] = []
    blocks: dict[str, list[int]] = {}
    for i, d in enumerate(spec.dims):
        if d.kind == "categorical":
            group = d.group if d.group is not None else d.name
            if group not in blocks:
                blocks[group] = []
                rows.append((group, blocks[group]))
            blocks[group].append(i)
        else:
            rows.append((d.name, [i]))
    return rows


def style_grid_z(contents: np.ndarray, styles: np.ndarray, strengths: np.ndarray) -> np.ndarray:
    """The latents of a style grid: cell (r, c) keeps content r's unchecked dims and takes style c's checked ones.

    Parameters
    ----------
    contents : (R, D) float array
    styles : (K, D) float array
    strengths : (D,) float array in [0, 1]

    Returns
    -------
    (R, K, D) float32 array: ``morph_np(contents[r], styles[c], strengths)``.
    """
    c, s = np.asarray(contents, np.float32), np.asarray(styles, np.float32)
    if c.ndim != 2 or s.ndim != 2 or c.shape[1] != s.shape[1]:
        raise ValueError(f"style grid: contents {c.shape} and styles {s.shape} must be (R, D) and (K, D)")
    a = np.broadcast_to(c[:, None, :], (len(c), len(s), c.shape[1]))
    b = np.broadcast_to(s[None, :, :], a.shape)
    return morph_np(a, b, strengths)


def style_grid_picture(content_images: np.ndarray, style_images: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Lay out a style grid: the style images along the top, the content images down the left, the cells.

    Parameters
    ----------
    content_images : (R, C, H, W) float array in [0, 1]
    style_images : (K, C, H, W) float array in [0, 1]
    cells : (R * K, C, H, W) float array in [0, 1], row-major

    Returns
    -------
    (C, (R + 1) * (H + 1) - 1, (K + 1) * (W + 1) - 1) float32 in [0, 1]; the top-left tile is black and
    a 1-pixel grey border separates tiles.
    """
    ci, si, x = (np.asarray(a, np.float32) for a in (content_images, style_images, cells))
    r, k = len(ci), len(si)
    if x.shape[0] != r * k or ci.shape[1:] != si.shape[1:] or x.shape[1:] != ci.shape[1:]:
        raise ValueError(f"style grid: {x.shape[0]} cells for {r} contents x {k} styles of shape {ci.shape[1:]}")
    tiles = [np.zeros_like(si[0])] + list(si)
    for i in range(r):
        tiles += [ci[i]] + list(x[i * k : (i + 1) * k])
    return tile(np.stack(tiles), ncols=k + 1, pad=1, pad_value=0.35)


@dataclass
class MorphSlot:
    """Image A or B: its latent (D,), the image it was encoded from (C, H, W) if any, and where it came from."""

    z: np.ndarray | None = None
    image: np.ndarray | None = None
    label: str = "not set"


class MorphController(QObject):
    """Drives the Morph tab of ``window``.

    Parameters
    ----------
    window : MainWindow
        Gives the client, the Explore panel, the export thread (``window._write_png``) and the log.

    Attributes
    ----------
    view : MorphView
    slots : dict
        ``{"A": MorphSlot, "B": MorphSlot}``.
    contents, styles : list of (z, label)
        Extra grid rows and columns (beyond A and B).
    """

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.view = MorphView()
        self.spec = LatentSpec(())
        self.info: DataInfo | None = None
        self.slots = {"A": MorphSlot(), "B": MorphSlot()}
        self.contents: list[tuple[np.ndarray, str]] = []
        self.styles: list[tuple[np.ndarray, str]] = []
        self._pending: dict[int, tuple[str, str]] = {}
        self._grid_shape = (0, 0)
        self._rng = np.random.default_rng()
        c = window.client
        c.ready.connect(self._on_ready)
        c.encoded.connect(self._on_encoded)
        c.decoded.connect(self._on_decoded)
        c.disentanglement.connect(self._on_disentanglement)
        v = self.view
        v.changed.connect(self.request_decode)
        v.swap_requested.connect(self.swap)
        v.set_requested.connect(self._set_from)
        v.grid_requested.connect(self._grid_action)
        v.export_requested.connect(self.ask_export)
        v.job.cancel_requested.connect(lambda rid: window.interpolation.exports.cancel(rid))

    # -- A and B ---------------------------------------------------------------------------------
    def set_z(self, slot: str, z: np.ndarray, label: str, image: np.ndarray | None = None) -> None:
        """Put latent ``z`` (D,) in slot "A" or "B" (with the image it came from) and redraw.

        Raises
        ------
        ValueError
            If ``z`` is not D finite numbers.
        """
        z = np.asarray(z, np.float32).reshape(-1)
        if z.shape != (self.spec.dim,) or not np.isfinite(z).all():
            raise ValueError(f"a morph latent must be {self.spec.dim} finite numbers, got shape {z.shape}")
        self.slots[slot] = MorphSlot(z, None if image is None else np.asarray(image, np.float32), str(label))
        self.view.set_slot(slot, self.slots[slot].label, self.slots[slot].image)
        self._update_block_labels()
        self.request_decode()

    def set_from_example(self, slot: str, index: int) -> int:
        """Encode held-out example ``index`` into slot "A" or "B" (request id; 0 when no model)."""
        if self.window.client.state not in MODEL_STATES:
            return 0
        rid = self.window.client.request_encode([int(index)], view="morph", split="test")
        self._pending[rid] = (slot, f"held-out #{int(index)}")
        self.view.set_slot(slot, self._busy_text(), self.slots[slot].image)
        return rid

    def set_from_image(self, slot: str, image: np.ndarray, label: str) -> int:
        """Encode (or, for a model without encoder, project) ``image`` (C, H, W) into a slot; the request id."""
        if self.window.client.state not in MODEL_STATES:
            return 0
        rid = self.window.client.request_encode_images(np.asarray(image, np.float32)[None], view="morph")
        self._pending[rid] = (slot, label)
        self.view.set_slot(slot, self._busy_text(), np.asarray(image, np.float32))
        return rid

    def _busy_text(self) -> str:
        ready = self.window.ready_event
        return "encoding..." if ready is not None and ready.capabilities.has_encoder else "projecting..."

    def _set_from(self, slot: str, source: str) -> None:
        if not self.spec.dim:
            return
        if source == "sliders":
            self.set_z(slot, self.window.explore_panel.z(), "current sliders")
        else:
            self.set_z(slot, prior_draw(self.spec, self._rng), "random")

    def swap(self) -> None:
        """Exchange A and B."""
        self.slots["A"], self.slots["B"] = self.slots["B"], self.slots["A"]
        for name, slot in self.slots.items():
            self.view.set_slot(name, slot.label, slot.image)
        self._update_block_labels()
        self.request_decode()

    def _on_encoded(self, event: protocol.Encoded) -> None:
        pending = self._pending.pop(event.request_id, None)
        if pending is None or event.z is None or not len(event.z):
            return
        slot, label = pending
        image = event.images[0] if event.images is not None and len(event.images) else None
        try:
            self.set_z(slot, event.z[0], label, image)
        except ValueError as exc:
            self.window.messages.log(f"Morph: {exc}", "error")

    # -- result ----------------------------------------------------------------------------------
    def strengths(self) -> np.ndarray:
        """(D,) float32 in [0, 1]: each row's checkbox (0 or 1) times its slider, spread over its dimensions."""
        return self.view.strengths()

    def result_z(self) -> np.ndarray | None:
        """The morphed latent (D,) float32, or None until A and B are both set."""
        a, b = self.slots["A"].z, self.slots["B"].z
        return None if a is None or b is None else morph_np(a, b, self.strengths())

    def grid_z(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(contents (R, D), styles (K, D), cells (R, K, D)) of the style grid, or None until A and B are set."""
        a, b = self.slots["A"].z, self.slots["B"].z
        if a is None or b is None:
            return None
        contents = np.stack([a] + [z for z, _ in self.contents])
        styles = np.stack([b] + [z for z, _ in self.styles])
        return contents, styles, style_grid_z(contents, styles, self.strengths())

    def request_decode(self, *_args: object) -> int:
        """Ask for [A, B, result] (view "morph") and the grid (view "morph-grid"); the morph request id (0: none)."""
        z = self.result_z()
        if z is None or self.window.client.state not in MODEL_STATES:
            return 0
        self.view.set_result_z(z)
        rid = self.window.client.request_decode(np.stack([self.slots["A"].z, self.slots["B"].z, z]), view="morph")
        grid = self.grid_z()
        if grid is not None and self.info is not None and self.info.kind == "image":
            contents, styles, cells = grid
            self._grid_shape = (len(contents), len(styles))
            self.window.client.request_decode(np.concatenate([contents, styles, cells.reshape(-1, self.spec.dim)]),
                                              view="morph-grid")
        return rid

    def _on_decoded(self, event: protocol.Decoded) -> None:
        if event.images is None or not len(event.images):
            return
        x = np.asarray(event.images, np.float32)
        if event.view == "morph" and len(x) == 3:
            if x.ndim == 2:  # points: A, B and the result over the data's modes
                modes = np.asarray(self.info.modes, np.float32) if self.info and self.info.modes else None
                self.view.set_result(plot_points(x, modes=modes, size=192))
                return
            self.view.set_result(x[2], x[0], x[1])
        elif event.view == "morph-grid" and x.ndim == 4:
            r, k = self._grid_shape
            if len(x) != r + k + r * k:
                return
            self.view.set_grid(style_grid_picture(x[:r], x[r : r + k], x[r + k :]), r, k)

    # -- grid ------------------------------------------------------------------------------------
    def _grid_action(self, action: str) -> None:
        a, b = self.slots["A"], self.slots["B"]
        if action == "row" and a.z is not None and len(self.contents) < MAX_GRID:
            self.contents.append((a.z.copy(), a.label))
        elif action == "col" and b.z is not None and len(self.styles) < MAX_GRID:
            self.styles.append((b.z.copy(), b.label))
        elif action == "clear":
            self.contents.clear()
            self.styles.clear()
        else:
            return
        self.request_decode()

    # -- model -----------------------------------------------------------------------------------
    def _on_ready(self, ready: protocol.Ready) -> None:
        spec = ready.latent
        self.info = ready.data
        if spec != self.spec:
            self.slots = {"A": MorphSlot(), "B": MorphSlot()}
            self.contents.clear()
            self.styles.clear()
            self._pending.clear()
        self.spec = spec
        self.view.set_latent(spec, morph_rows(spec))
        for name, slot in self.slots.items():
            self.view.set_slot(name, slot.label, slot.image)
        self.view.set_points(self.info.kind == "points")
        self.request_decode()

    def _on_disentanglement(self, event: protocol.DisentanglementMeasured) -> None:
        m = None if event.mi_matrix is None else np.asarray(event.mi_matrix, np.float64)
        names = list(event.factor_names)
        if m is None or m.ndim != 2 or m.shape != (self.spec.dim, len(names)):
            return
        factors = [None if (k := factor_of(row)) is None else names[k] for row in m]
        self.view.set_factors(factors)

    def _update_block_labels(self) -> None:
        """Show which class each categorical block holds in A and in B."""
        a, b = self.slots["A"].z, self.slots["B"].z
        for name, idx in morph_rows(self.spec):
            if len(idx) > 1 or self.spec.dims[idx[0]].kind == "categorical":
                pick = lambda z: "-" if z is None else self.spec.dims[idx[int(np.argmax(z[idx]))]].name  # noqa: E731
                self.view.set_block_text(name, f"A: {pick(a)}  \u2192  B: {pick(b)}")

    # -- exports ---------------------------------------------------------------------------------
    def latents(self, grid: bool = False) -> dict:
        """The sidecar's ``latents``: z_a, z_b, strengths (lists), with ``grid`` contents and styles."""
        a, b = self.slots["A"].z, self.slots["B"].z
        if a is None or b is None:
            raise ValueError("set image A and image B first")
        out = {"z_a": a.astype(float).tolist(), "z_b": b.astype(float).tolist(),
               "strengths": self.strengths().astype(float).tolist()}
        if grid:
            g = self.grid_z()
            out["grid"] = {"contents": g[0].astype(float).tolist(), "styles": g[1].astype(float).tolist()}
        return out

    def export(self, path: str | Path, what: str = "result") -> int:
        """Ask the worker to render the morph to ``path``, with a sidecar ``latent-studio render`` reproduces.

        ``what``: "result" (PNG of the result), "grid" (PNG of the style grid: rows are contents,
        columns styles) or "animation" (GIF or MP4 by suffix: :data:`MORPH_FRAMES` frames with the
        strengths ramping from 0, image A, to the ones shown). Progress and Cancel show in
        ``view.job``; the window's ``exported`` signal fires when the file is written.

        Returns
        -------
        int
            The Export's request id (0 if no worker took it).

        Raises
        ------
        ValueError
            If A or B is not set, the grid is empty, the suffix does not fit ``what``, or no model is loaded.
        """
        path = Path(path)
        want = (".gif", ".mp4") if what == "animation" else (".png",)
        if path.suffix.lower() not in want:
            raise ValueError(f"{path}: export the morph {what} to {' or '.join(want)}")
        if self.window.client.state not in MODEL_STATES:
            raise ValueError("no model is loaded")
        latents = self.latents(grid=what == "grid")
        if what == "grid" and (not latents["grid"]["contents"] or not latents["grid"]["styles"]):
            raise ValueError("the style grid is empty: add A as a row and B as a column")
        if what == "animation":
            latents["frames"] = MORPH_FRAMES
        settings = {"fps": MORPH_FPS, "size": EXPORT_SIZE, "resample": "nearest", "labels": False}
        return self.window.interpolation.exports.send("morph", path, latents, settings, self.view.job)

    def ask_export(self, what: str) -> None:
        """Ask for a file name and export ("result", "grid", "gif" or "mp4")."""
        kind = "animation" if what in ("gif", "mp4") else what
        suffix = f".{what}" if kind == "animation" else ".png"
        filters = {".png": "PNG images (*.png)", ".gif": "GIF (*.gif)", ".mp4": "MP4 video (*.mp4)"}
        path, _ = QFileDialog.getSaveFileName(self.window, f"Export morph {what}", f"morph-{what}{suffix}",
                                              filters[suffix])
        if not path:
            return
        try:
            self.export(path, kind)
        except ValueError as exc:
            self.window.statusBar().showMessage(str(exc), 5000)
