"""The Morph tab: its numpy maths (engines.shared.latent_np.morph) against engines.lib.latent.morph, and the tab
driven by synthetic events."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from engines.shared import protocol
from engines.shared.datainfo import DataInfo
from engines.lib.latent import mask_for, morph
from engines.shared.latent_np import morph as morph_np
from engines.shared.spec import LatentDim, LatentSpec
from fakes import FakeClient, caps
from studio.features.morph.state import style_grid_picture, style_grid_z

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

IMAGES = DataInfo(spec="test", kind="image", shape=(1, 8, 8), size=64, n_train=56, n_test=8)
D = 4
#: A conditional model's latent: two noise dimensions and a three-class code.
CGAN = LatentSpec((LatentDim("z0"), LatentDim("z1"),
                   *(LatentDim(f"class={k}", "categorical", 0.0, 1.0, "class") for k in range(3))))


def test_morph_np_equals_engines_morph() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 5, 16)).astype(np.float32)
    for s in (rng.uniform(0, 1, 16), np.array([0, 1, 0.5, 0.25, 0.75, 1e-4, 0.9999, 0.4999] * 2)):
        s = s.astype(np.float32)
        want = morph(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(s)).numpy()
        np.testing.assert_allclose(morph_np(a, b, s), want, rtol=1e-6, atol=1e-6)  # torch may fuse (FMA)
    # masks from mask_for: exact ends, and a 0/1 mask swaps whole dimensions
    spec = LatentSpec.gaussian(16)
    m = mask_for(spec, ["z1", 4, "z9"]).numpy()
    got = morph_np(a[0], b[0], m)
    np.testing.assert_array_equal(got, morph(torch.from_numpy(a[0]), torch.from_numpy(b[0]), torch.from_numpy(m)).numpy())
    np.testing.assert_array_equal(got[[1, 4, 9]], b[0, [1, 4, 9]])
    keep = np.setdiff1d(np.arange(16), [1, 4, 9])
    np.testing.assert_array_equal(got[keep], a[0, keep])
    np.testing.assert_array_equal(morph_np(a, b, 0.0), a)  # all-A mask returns A
    with pytest.raises(ValueError):
        morph_np(a, b, np.full(16, 1.5, np.float32))
    with pytest.raises(ValueError):
        morph_np(a, b[:, :8], 0.5)


def test_rows_and_style_grid_maths() -> None:
    assert [(name, idx) for _, name, idx in CGAN.groups()] == [("z0", [0]), ("z1", [1]), ("class", [2, 3, 4])]
    contents = np.arange(3 * D, dtype=np.float32).reshape(3, D)
    styles = -np.arange(2 * D, dtype=np.float32).reshape(2, D) - 1
    s = np.array([1, 0, 1, 0], np.float32)
    cells = style_grid_z(contents, styles, s)
    assert cells.shape == (3, 2, D)
    np.testing.assert_array_equal(cells[2, 1, [1, 3]], contents[2, [1, 3]])  # rows keep unchecked dims
    np.testing.assert_array_equal(cells[2, 1, [0, 2]], styles[1, [0, 2]])  # columns give checked dims
    pic = style_grid_picture(np.zeros((3, 1, 8, 8)), np.ones((2, 1, 8, 8)), np.full((6, 1, 8, 8), 0.5))
    assert pic.shape == (1, 4 * 9 - 1, 3 * 9 - 1)
    assert pic[0, 0, 0] == 0 and pic[0, 0, 9] == 1 and pic[0, 9, 0] == 0 and pic[0, 9, 9] == 0.5
    with pytest.raises(ValueError):
        style_grid_picture(np.zeros((3, 1, 8, 8)), np.ones((2, 1, 8, 8)), np.full((5, 1, 8, 8), 0.5))


class Morph:
    """The Morph feature alone over a FakeClient: ``morph`` (its controller), ``services``, ``client``."""

    def __init__(self, qtbot, spec: LatentSpec, has_encoder: bool = True) -> None:  # noqa: ANN001
        from studio.features.morph.controller import MorphController
        from studio.services import Services

        self.client = FakeClient(last_checkpoint=None)
        self.services = Services(self.client)
        self.morph = MorphController(self.services)
        qtbot.addWidget(self.morph.view)
        self.client.ready.emit(protocol.Ready(model="m", family="vae", data=IMAGES, capabilities=caps(has_encoder),
                                              latent=spec, step=3))

    def close(self) -> None:
        self.services.close()


def make_window(qtbot, spec: LatentSpec, has_encoder: bool = True):  # noqa: ANN001, ANN201
    w = Morph(qtbot, spec, has_encoder)
    return w, w.client


def last_decode(client: FakeClient, view: str) -> np.ndarray:
    return [z for v, z in client.decodes if v == view][-1]


def test_box_toggled_decodes_the_morphed_z(qtbot) -> None:
    w, client = make_window(qtbot, LatentSpec.gaussian(D))
    ctl, view = w.morph, w.morph.view
    assert [r.name for r in view.rows] == ["z0", "z1", "z2", "z3"]
    assert ctl.request_decode() == 0  # no A and B yet
    za, zb = np.array([1.0, 2.0, 3.0, 4.0]), np.array([-1.0, -2.0, -3.0, -4.0])
    ctl.set_z("A", za, "a")
    ctl.set_z("B", zb, "b")
    np.testing.assert_array_equal(last_decode(client, "morph"), np.stack([za, zb, za]).astype(np.float32))
    n = len(client.decodes)
    view.row("z1").check.setChecked(True)  # take z1 from B at strength 1
    assert len(client.decodes) > n
    np.testing.assert_array_equal(last_decode(client, "morph")[2], [1.0, -2.0, 3.0, 4.0])
    view.row("z3").check.setChecked(True)
    view.row("z3").slider.setValue(0.25)
    np.testing.assert_allclose(last_decode(client, "morph")[2], [1.0, -2.0, 3.0, 4.0 - 0.25 * 8.0])
    view.none_button.click()
    np.testing.assert_array_equal(last_decode(client, "morph")[2], za)
    view.all_button.click()
    np.testing.assert_allclose(last_decode(client, "morph")[2], [-1.0, -2.0, -3.0, 4.0 - 0.25 * 8.0])
    view.swap_button.click()
    np.testing.assert_allclose(last_decode(client, "morph")[2], [1.0, 2.0, 3.0, -4.0 + 0.25 * 8.0])
    # the answer is shown; factor labels follow the disentanglement metrics
    client.decoded.emit(protocol.Decoded(request_id=9, view="morph", images=np.full((3, 1, 8, 8), 0.5, np.float32)))
    assert view.result_picture().shape == (1, 8, 8) and not view.pictures["A"].pixmap().isNull()
    mi = np.zeros((D, 2))
    mi[3, 1] = 0.8
    ctl._on_disentanglement(protocol.DisentanglementMeasured(mi_matrix=mi, factor_names=["scale", "x"]))
    assert view.row("z3").check.text() == "z3: x" and view.row("z0").check.text() == "z0"
    with pytest.raises(ValueError):
        ctl.set_z("A", np.zeros(3), "wrong")
    w.close()


def test_class_block_swap_keeps_the_noise(qtbot) -> None:
    w, client = make_window(qtbot, CGAN, has_encoder=False)
    ctl, view = w.morph, w.morph.view
    assert [r.name for r in view.rows] == ["z0", "z1", "class"] and view.row("class").categorical
    za = np.array([0.3, -0.7, 1, 0, 0], np.float32)
    zb = np.array([2.0, 1.5, 0, 0, 1], np.float32)
    ctl.set_z("A", za, "a")
    ctl.set_z("B", zb, "b")
    assert "class=0" in view.row("class").block.text() and "class=2" in view.row("class").block.text()
    view.row("class").check.setChecked(True)  # change the class, keep z
    np.testing.assert_array_equal(last_decode(client, "morph")[2], np.concatenate([za[:2], zb[2:]]))
    view.row("class").slider.setValue(0.5)  # one strength for the whole block: a valid mixture
    got = last_decode(client, "morph")[2]
    np.testing.assert_allclose(got, [0.3, -0.7, 0.5, 0, 0.5])
    assert got[2:].sum() == pytest.approx(1.0)
    # a held-out example into B goes through Encode (projection for a GAN): "projecting..." until it arrives
    rid = ctl.set_from_example("B", 5)
    enc = client.of(protocol.Encode)[-1]
    assert enc.request_id == rid and enc.view == "morph" and enc.indices == [5]
    assert view.captions["B"].text() == "projecting..."
    client.encoded.emit(protocol.Encoded(request_id=rid, view="morph", z=np.array([[9, 9, 0, 1, 0]], np.float32),
                                         images=np.ones((1, 1, 8, 8), np.float32)))
    assert view.captions["B"].text() == "held-out #5"
    np.testing.assert_allclose(last_decode(client, "morph")[2], [0.3, -0.7, 0.5, 0.5, 0])
    w.close()


def test_style_grid_and_exports(qtbot, tmp_path) -> None:
    w, client = make_window(qtbot, LatentSpec.gaussian(D))
    ctl, view = w.morph, w.morph.view
    with pytest.raises(ValueError):
        ctl.export(tmp_path / "none.png")
    ctl.set_z("A", np.zeros(D), "a0")
    ctl.set_z("B", np.ones(D), "b0")
    view.row_button.click()  # A as an extra content row
    ctl.set_z("A", np.full(D, 2.0), "a1")
    view.col_button.click()  # B as an extra style column
    view.row("z0").check.setChecked(True)
    grid = last_decode(client, "morph-grid")
    r, k = 2, 2
    assert grid.shape == (r + k + r * k, D)
    np.testing.assert_array_equal(grid[:r], [np.full(D, 2.0), np.zeros(D)])  # contents: A, then the extra row
    np.testing.assert_array_equal(grid[r + k + 1], [1.0, 2.0, 2.0, 2.0])  # row A, column 2: z0 from the style
    client.decoded.emit(protocol.Decoded(request_id=1, view="morph-grid",
                                         images=np.linspace(0, 1, 8, dtype=np.float32)[:, None, None, None]
                                         * np.ones((8, 1, 8, 8), np.float32)))
    assert view.grid_picture().shape == (1, (r + 1) * 9 - 1, (k + 1) * 9 - 1)
    # exports go to the worker as Export commands whose latents reproduce what the tab shows
    with pytest.raises(ValueError):
        ctl.export(tmp_path / "m.gif", "result")  # a result is a PNG
    assert ctl.export(tmp_path / "m.png", "result")
    cmd = client.sent[-1]
    assert isinstance(cmd, protocol.Export) and cmd.kind == "morph" and cmd.out == str(tmp_path / "m.png")
    np.testing.assert_allclose(cmd.latents["z_a"], np.full(D, 2.0))
    assert cmd.latents["strengths"] == [1.0, 0.0, 0.0, 0.0] and "grid" not in cmd.latents
    assert view.job.request_id == cmd.request_id and not view.job.isHidden()  # its progress shows
    assert ctl.export(tmp_path / "g.png", "grid")
    assert np.shape(client.sent[-1].latents["grid"]["contents"]) == (2, D)
    assert ctl.export(tmp_path / "m.mp4", "animation")
    assert client.sent[-1].latents["frames"] > 1 and client.sent[-1].out.endswith(".mp4")
    # the worker's answer ends the progress display
    client.exported.emit(protocol.Exported(request_id=client.sent[-1].request_id, path=str(tmp_path / "m.mp4"),
                                           sidecar=str(tmp_path / "m.mp4.json"), frames=24, seconds=0.1))
    assert client.sent[-1].request_id not in w.services.exports.pending and view.job.isHidden()
    view.clear_button.click()
    assert last_decode(client, "morph-grid").shape == (3, D)
    w.close()
