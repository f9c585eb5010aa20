"""engines.lib.export and the export CLI: sidecars, byte-identical re-render, hash check, cancel, SPECs."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import latent_studio
from engines.lib import export as E
from engines.shared import media
from engines.lib.checkpoint import save_checkpoint
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ExportCancelled, ExportError
from engines.shared.registry import create_engine

pytestmark = pytest.mark.usefixtures("one_torch_thread")
D = 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, one_torch_thread):
    """An untrained 16 px MLP VAE on digits, saved as a run folder."""
    info = DataInfo(spec="digits", kind="image", shape=(1, 16, 16), size=1797, n_train=1617, n_test=180)
    torch.manual_seed(0)
    engine = create_engine("vae", info, latent_dim=D, arch="mlp", hidden=32)
    run = tmp_path_factory.mktemp("tiny")
    save_checkpoint(engine, run / "model.safetensors", step=0, data_spec="digits", image_size=16)
    return engine.eval(), run


KEYS = [[0.0, 0.0, 0.0], [1.5, -2.0, 0.5], [-1.0, 1.0, 2.0]]


def test_export_then_render_is_byte_identical(tiny, tmp_path) -> None:
    engine, run = tiny
    jobs = [
        ("interpolation", {"keyframes": KEYS, "method": "slerp", "frames": 9}, "path.gif"),
        ("interpolation", {"keyframes": KEYS, "method": "spline", "frames": 9, "constant_speed": True}, "path.png"),
        ("traversal", {"z": [0.1, 0.2, 0.3], "dims": [0, 2], "steps": 5}, "trav.png"),
        ("morph", {"z_a": KEYS[0], "z_b": KEYS[1], "strengths": [1.0, 0.0, 0.5], "frames": 4}, "morph.gif"),
        ("samples", {"seed": 3, "n": 6}, "samples.png"),
    ]
    for kind, latents, name in jobs:
        out = tmp_path / name
        calls = []
        side = E.export(engine, kind, out, run, latents, {"size": 32, "labels": True},
                        progress=lambda d, t: calls.append((d, t)))
        assert side == tmp_path / (name + ".json") and calls[-1][0] == calls[-1][1]
        original = out.read_bytes()
        d = json.loads(side.read_text())
        assert d["latent_studio_sidecar"] == E.SIDECAR_VERSION and d["kind"] == kind and d["output"] == name
        assert d["checkpoint"]["sha256"] == E.file_sha256(run / "model.safetensors")
        out.unlink()
        assert E.render(side) == out
        assert out.read_bytes() == original, name
    assert media.read_frame_count(tmp_path / "path.gif") == 9
    with Image.open(tmp_path / "trav.png") as im:  # 2 rows (dims) x 5 columns of 32 px + label band
        assert im.size == (5 * 33 - 1, 2 * (32 + media.LABEL_HEIGHT + 1) - 1)


def test_frames_follow_the_output_type(tiny) -> None:
    engine, run = tiny
    lat = {"z": None, "dims": [0, 1, 2], "steps": 4}
    side = {"latent_studio_sidecar": 1, "kind": "traversal", "output": "t.gif",
            "checkpoint": {"path": "x", "sha256": "0" * 64}, "latents": lat}
    frames = E.frames_for(engine, side)
    assert frames.shape == (4, 1, 2 * 17 - 1, 2 * 17 - 1)  # 4 steps, each 3 dims tiled 2 x 2
    cells = E.frames_for(engine, side, suffix=".png")
    assert cells.shape == (12, 1, 16, 16) and 0 <= cells.min() and cells.max() <= 1
    # row r of the grid sweeps dims[r]: decode the same latents by hand
    z = torch.zeros(12, D)
    values = torch.linspace(-3, 3, 4)
    for r in range(3):
        z[r * 4 : (r + 1) * 4, r] = values
    with torch.no_grad():
        assert np.allclose(cells, engine.decode(z).numpy(), atol=1e-5)
    assert np.allclose(E.latents_for(engine, side)[:3], z[[0, 4, 8]].numpy())  # step-major: step 0 of each dim


def test_hash_mismatch_names_the_checkpoint(tiny, tmp_path) -> None:
    engine, _ = tiny
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(engine, run / "model.safetensors", step=0, data_spec="digits", image_size=16)
    side = E.export(engine, "samples", tmp_path / "s.png", run, {"seed": 0, "n": 4}, {})
    # same weights, another step in the manifest: another file, another hash
    save_checkpoint(engine, run / "model.safetensors", step=1, data_spec="digits", image_size=16)
    with pytest.raises(ExportError, match=r"model\.safetensors.*does not match"):
        E.render(side)
    (run / "model.safetensors").unlink()
    with pytest.raises(ExportError, match="does not exist"):
        E.render(side)


def test_cancel_leaves_no_file(tiny, tmp_path) -> None:
    engine, run = tiny
    cancel = threading.Event()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        cancel.set()  # cancel after the first batch

    for name in ("c.gif", "c.mp4", "c.png"):
        seen.clear()
        cancel.clear()
        with pytest.raises(ExportCancelled):
            E.export(engine, "interpolation", tmp_path / name, run,
                     {"keyframes": KEYS[:2], "frames": 3 * E.DECODE_CHUNK}, {}, progress=progress, cancel=cancel)
        assert seen == [E.DECODE_CHUNK]
    assert list(tmp_path.iterdir()) == []


def test_bad_sidecars_are_export_errors(tiny, tmp_path) -> None:
    engine, run = tiny
    side = E.export(engine, "samples", tmp_path / "s.gif", run, {"seed": 1, "n": 3}, {"fps": 5})
    good = json.loads(side.read_text())
    bad = tmp_path / "bad.json"
    cases = [
        ("{not json", "not valid JSON"),
        (json.dumps({**good, "kind": "video"}), "unknown kind"),
        (json.dumps({**good, "output": "../evil.gif"}), "file name in the sidecar's folder"),
        (json.dumps({**good, "latents": {"seed": 1, "n": 0}}), "n must be an integer"),
        (json.dumps({**good, "settings": {"fps": -1}}), "fps"),
        (json.dumps({**good, "checkpoint": {"path": "m", "sha256": "xyz"}}), "sha256"),
        # issue 12: 1,024 frames at 4,096 px would need 48 GiB as RGB, 16 GiB as a GIF keeps them; refused first
        (json.dumps({**good, "kind": "interpolation", "settings": {"size": 4096},
                     "latents": {"keyframes": [[0.0] * D, [1.0] * D], "frames": 1024}}), "16.0 GiB"),  # GIF: a byte a pixel
    ]
    for text, message in cases:
        bad.write_text(text)
        with pytest.raises(ExportError, match=message) as info:
            E.read_sidecar(bad)
        assert "bad.json" in str(info.value)
    wrong_dim = {**good, "kind": "interpolation", "latents": {"keyframes": [[0.0] * 5, [1.0] * 5], "frames": 3}}
    with pytest.raises(ExportError, match="5 dimensions"):
        E.frames_for(engine, wrong_dim)


def test_write_latents(tmp_path) -> None:
    z = np.random.default_rng(0).normal(size=(7, D)).astype(np.float32)
    assert np.array_equal(np.load(E.write_latents(z, tmp_path / "z.npy"), allow_pickle=False), z)
    back = json.loads(E.write_latents(torch.from_numpy(z), tmp_path / "z.json").read_text())["z"]
    assert np.array_equal(np.asarray(back, np.float32), z)
    with pytest.raises(ExportError, match="npy or .json"):
        E.write_latents(z, tmp_path / "z.txt")


def test_points_model_exports_a_trail(tmp_path) -> None:
    info = DataInfo(spec="ring", kind="points", shape=(2,), size=512, n_train=460, n_test=52,
                    modes=((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)))
    torch.manual_seed(0)
    engine = create_engine("vae", info, latent_dim=2).eval()
    save_checkpoint(engine, tmp_path / "ring.safetensors", step=0, data_spec="ring")
    side = {"latent_studio_sidecar": 1, "kind": "interpolation", "output": "p.gif",
            "checkpoint": {"path": "x", "sha256": "0" * 64}, "latents": {"keyframes": [[0, 0], [2, 2]], "frames": 6}}
    frames = E.frames_for(engine, side)
    assert frames.shape == (6, 6, 2)
    assert [int(np.isfinite(f).all(-1).sum()) for f in frames] == [1, 2, 3, 4, 5, 6]
    sc = E.export(engine, "interpolation", tmp_path / "p.gif", tmp_path / "ring.safetensors", side["latents"], {})
    assert media.read_frame_count(tmp_path / "p.gif") == 6
    before = (tmp_path / "p.gif").read_bytes()
    E.render(sc)
    assert (tmp_path / "p.gif").read_bytes() == before


# -- the CLI on real runs ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, one_torch_thread):
    out = tmp_path_factory.mktemp("cli") / "vae"
    assert latent_studio.main(["train", "--data", "digits", "--model", "vae", "--steps", "5", "--image-size", "16",
                               "--latent-dim", "3", "--threads", "1", "--out", str(out)]) == 0
    return out


def test_cli_interpolate_traverse_render(vae_run, tmp_path, capsys) -> None:
    gif = tmp_path / "i.gif"
    image = vae_run / "samples.png"  # an image file SPEC, through the encoder
    assert latent_studio.main(["interpolate", "--run", str(vae_run), "--from", "7", "--via", "data:2",
                               "--to", str(image), "--frames", "8", "--slerp", "--size", "32",
                               "--out", str(gif)]) == 0
    assert media.read_frame_count(gif) == 8
    side = json.loads((tmp_path / "i.gif.json").read_text())
    keys = side["latents"]["keyframes"]
    assert side["latents"]["method"] == "slerp" and len(keys) == 3 and all(len(k) == D for k in keys)
    gen = torch.Generator().manual_seed(7)
    assert np.allclose(keys[0], torch.randn(1, D, generator=gen)[0].numpy())  # seed SPEC: a prior draw
    original = gif.read_bytes()
    gif.unlink()
    assert latent_studio.main(["render", str(tmp_path / "i.gif.json")]) == 0
    assert gif.read_bytes() == original

    png = tmp_path / "t.png"
    assert latent_studio.main(["traverse", "--run", str(vae_run / "model.safetensors"), "--dims", "0", "2",
                               "--steps", "4", "--size", "0", "--out", str(png)]) == 0
    with Image.open(png) as im:
        assert im.size == (4 * 17 - 1, 2 * 17 - 1)  # --size 0: the model's own 16 px tiles
    assert latent_studio.main(["traverse", "--run", str(vae_run), "--dims", "0", "2", "--steps", "4",
                               "--out", str(tmp_path / "big.png")]) == 0
    with Image.open(tmp_path / "big.png") as im:
        assert im.size == (4 * 97 - 1, 2 * 97 - 1)  # default: 96 px tiles (nearest, x6)
    mp4 = tmp_path / "t.mp4"
    assert latent_studio.main(["render", str(png) + ".json", "--out", str(mp4)]) == 0
    assert media.read_frame_count(mp4) == 4 and (tmp_path / "t.mp4.json").is_file()

    capsys.readouterr()
    assert latent_studio.main(["interpolate", "--run", str(vae_run), "--from", "1", "--to", "data:99999",
                               "--frames", "3", "--out", str(tmp_path / "x.gif")]) == 2
    assert "data:99999" in capsys.readouterr().err
    assert latent_studio.main(["interpolate", "--run", str(vae_run), "--from", "1", "--to", str(tmp_path / "no.png"),
                               "--frames", "3", "--out", str(tmp_path / "x.gif")]) == 2
    assert "no.png" in capsys.readouterr().err
    assert not (tmp_path / "x.gif").exists()


def test_cli_gan_image_spec_goes_through_projection(tmp_path, monkeypatch, one_torch_thread) -> None:
    import engines.lib.projection as projection

    run = tmp_path / "gan"
    assert latent_studio.main(["train", "--data", "digits", "--model", "gan", "--steps", "2", "--image-size", "16",
                               "--latent-dim", "4", "--batch-size", "16", "--threads", "1", "--out", str(run)]) == 0
    steps = []
    real = projection.project

    def spy(engine, x, **kw):
        z, losses = real(engine, x, **kw)
        steps.append(len(losses))
        return z, losses

    monkeypatch.setattr(projection, "project", spy)
    out = tmp_path / "g.png"
    assert latent_studio.main(["interpolate", "--run", str(run), "--from", str(run / "samples.png"), "--to", "3",
                               "--frames", "4", "--project-steps", "3", "--out", str(out)]) == 0
    assert steps == [3]  # the GAN has no encoder: the image was projected
    assert media.read_frame_count(out) == 1 and (tmp_path / "g.png.json").is_file()
