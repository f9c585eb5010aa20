"""The Morph tab's glue and maths: take chosen latent dimensions (or whole categorical codes) from B.

A morph keeps image A's latent and takes a chosen subset of dimensions from image B, each with a
strength in [0, 1]: ``z = z_a + m * s * (z_b - z_a)`` elementwise (:func:`engines.shared.latent_np.morph`,
the numpy twin of :func:`engines.lib.latent.morph`: the window never imports torch). Its rows are the
latent's groups (:meth:`~engines.shared.spec.LatentSpec.groups`). For a conditional model, taking
only the class block from B changes the class and keeps the noise (content vs style). The style
grid follows the figure of Zhu, Xu, Zhang, Shen and Wong (2020), "Semantically multi-modal image
synthesis" (GroupDNet, CVPR): rows keep a content latent's unchecked dimensions, columns give
their checked dimensions.

:class:`MorphController` sits between the worker client and :class:`~studio.features.morph.view.MorphView`:
A and B come from held-out examples or the user's images (Encode, view ``"morph"``), the sliders or
the prior; the result and the grid are decoded live (views ``"morph"`` and ``"morph-grid"``, the
newest request wins); exports (PNG of the result or the grid, GIF/MP4 of A morphing into the
result) are rendered by the worker from the same latents and come with a sidecar that
``latent-studio render`` reproduces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.shared.imaging import plot_points
from engines.shared.latent_np import morph, prior_draw
from engines.shared.spec import LatentSpec
from studio.features.morph.state import MorphSlot, style_grid_picture, style_grid_z
from studio.features.morph.view import MorphView
from studio.services import Services
from studio.state import factor_of

#: Frames of an exported morph animation (strength ramping from 0 to the chosen values) and its rate.
MORPH_FRAMES, MORPH_FPS = 24, 12
#: Longest side of exported morph pictures and frames, px (nearest-neighbour upscaling).
EXPORT_SIZE = 512
#: Most extra content rows and extra style columns of the grid.
MAX_GRID = 6


class MorphController(QObject):
    """Drives the Morph tab.

    Parameters
    ----------
    services : Services

    Attributes
    ----------
    view : MorphView
    slots : dict
        ``{"A": MorphSlot, "B": MorphSlot}``.
    contents, styles : list of (z, label)
        Extra grid rows and columns (beyond A and B).
    """

    def __init__(self, services: Services, parent: QObject | None = None) -> None:
        super().__init__(parent or services)
        self.services = services
        self.view = MorphView()
        self.point = np.zeros(0, np.float32)
        self.spec = LatentSpec(())
        self.info: DataInfo | None = None
        self.slots = {"A": MorphSlot(), "B": MorphSlot()}
        self.contents: list[tuple[np.ndarray, str]] = []
        self.styles: list[tuple[np.ndarray, str]] = []
        self._pending: dict[int, tuple[str, str]] = {}
        self._grid_shape = (0, 0)
        self._rng = np.random.default_rng()
        c = services.client
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
        v.job.cancel_requested.connect(services.exports.cancel)

    # -- A and B ---------------------------------------------------------------------------------
    def set_point(self, z: np.ndarray) -> None:
        """The current slider point (for "A/B from the sliders")."""
        self.point = np.asarray(z, np.float32).reshape(-1)

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
        if not self.services.has_model():
            return 0
        rid = self.services.client.request_encode([int(index)], view="morph", split="test")
        self._pending[rid] = (slot, f"held-out #{int(index)}")
        self.view.set_slot(slot, self._busy_text(), self.slots[slot].image)
        return rid

    def set_from_image(self, slot: str, image: np.ndarray, label: str) -> int:
        """Encode (or, for a model without encoder, project) ``image`` (C, H, W) into a slot; the request id."""
        if not self.services.has_model():
            return 0
        rid = self.services.client.request_encode_images(np.asarray(image, np.float32)[None], view="morph")
        self._pending[rid] = (slot, label)
        self.view.set_slot(slot, self._busy_text(), np.asarray(image, np.float32))
        return rid

    def _busy_text(self) -> str:
        ready = self.services.ready
        return "encoding..." if ready is not None and ready.capabilities.has_encoder else "projecting..."

    def _set_from(self, slot: str, source: str) -> None:
        if not self.spec.dim:
            return
        if source == "sliders":
            self.set_z(slot, self.point, "current sliders")
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
            self.services.notify(f"Morph: {exc}", "error", status="")

    # -- result ----------------------------------------------------------------------------------
    def strengths(self) -> np.ndarray:
        """(D,) float32 in [0, 1]: each row's checkbox (0 or 1) times its slider, spread over its dimensions."""
        return self.view.strengths()

    def result_z(self) -> np.ndarray | None:
        """The morphed latent (D,) float32, or None until A and B are both set."""
        a, b = self.slots["A"].z, self.slots["B"].z
        return None if a is None or b is None else morph(a, b, self.strengths())

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
        if z is None or not self.services.has_model():
            return 0
        self.view.set_result_z(z)
        rid = self.services.client.request_decode(np.stack([self.slots["A"].z, self.slots["B"].z, z]), view="morph")
        grid = self.grid_z()
        if grid is not None and self.info is not None and self.info.kind == "image":
            contents, styles, cells = grid
            self._grid_shape = (len(contents), len(styles))
            self.services.client.request_decode(np.concatenate([contents, styles, cells.reshape(-1, self.spec.dim)]),
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
        self.view.set_latent(spec)
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
        for name, idx in self.spec.categorical.items():
            held = ["-" if z is None else self.spec.dims[idx[int(np.argmax(z[idx]))]].name for z in (a, b)]
            self.view.set_block_text(name, f"A: {held[0]}  \u2192  B: {held[1]}")

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
        ``view.job``; the services' ``exported`` signal fires when the file is written.

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
        if not self.services.has_model():
            raise ValueError("no model is loaded")
        latents = self.latents(grid=what == "grid")
        if what == "grid" and (not latents["grid"]["contents"] or not latents["grid"]["styles"]):
            raise ValueError("the style grid is empty: add A as a row and B as a column")
        if what == "animation":
            latents["frames"] = MORPH_FRAMES
        settings = {"fps": MORPH_FPS, "size": EXPORT_SIZE, "resample": "nearest", "labels": False}
        return self.services.exports.send("morph", path, latents, settings, self.view.job)

    def ask_export(self, what: str) -> None:
        """Ask for a file name and export ("result", "grid", "gif" or "mp4")."""
        kind = "animation" if what in ("gif", "mp4") else what
        suffix = f".{what}" if kind == "animation" else ".png"
        filters = {".png": "PNG images (*.png)", ".gif": "GIF (*.gif)", ".mp4": "MP4 video (*.mp4)"}
        path, _ = QFileDialog.getSaveFileName(self.view, f"Export morph {what}", f"morph-{what}{suffix}",
                                              filters[suffix])
        if not path:
            return
        try:
            self.export(path, kind)
        except ValueError as exc:
            self.services.notify("", status=str(exc))
