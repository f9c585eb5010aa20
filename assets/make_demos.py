"""Train the demo models that File > Open demo offers, so a new user explores a trained model within seconds.

Each demo is a run folder (``model.safetensors`` with its JSON manifest, ``run.json``, ``samples.png``)
trained here by the real ``latent-studio train`` command on data the studio generates or ships:

- ``beta-vae-shapes``: a beta-VAE (beta 4) on the built-in dSprites-style ``shapes:32``, its sliders
  labelled by the factors they capture;
- ``gan-ring``: a GAN on the 8-mode ``ring`` (z of width 2, batches of 100, as PacGAN's setup);
- ``vae-digits``: a VAE (fully connected, 16 px) on scikit-learn's ``digits``.

Each checkpoint is saved again without the optimiser's moments (a third of the size; training on from a
demo starts Adam afresh), so the three folders take about 4 MB (the conv beta-VAE most of it).

    python assets/make_demos.py [--out assets/demos] [--threads 2]

A run takes a few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> the ``latent-studio train`` arguments that make it.
DEMOS = {
    "beta-vae-shapes": ["--data", "shapes:32", "--model", "beta-vae", "--beta", "4", "--steps", "3000",
                        "--batch-size", "64"],
    "gan-ring": ["--data", "ring", "--model", "gan", "--latent-dim", "2", "--steps", "4000", "--batch-size", "100"],
    "vae-digits": ["--data", "digits", "--model", "vae", "--arch", "mlp", "--image-size", "16", "--steps", "3000",
                   "--batch-size", "64"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "demos")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="+", choices=sorted(DEMOS), help="make only these demos")
    args = ap.parse_args()
    for name in args.only or DEMOS:
        cmd = [sys.executable, "-m", "latent_studio", "train", *DEMOS[name], "--seed", "0", "--log-every", "50",
               "--threads", str(args.threads), "--out", str(args.out / name)]
        print("$", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True)
        _drop_optimizer_state(args.out / name / "model.safetensors")
    return 0


def _drop_optimizer_state(path: Path) -> None:
    """Save ``path`` again with fresh optimisers (no moment tensors): the weights and manifest unchanged."""
    from engines.lib.checkpoint import load_checkpoint, read_manifest, save_checkpoint

    manifest = read_manifest(path)
    engine, _ = load_checkpoint(path, device="cpu", with_optimizer=False)
    save_checkpoint(engine, path, step=int(manifest["step"]), data_spec=manifest["data_spec"],
                    image_size=manifest.get("image_size"),
                    extra={**(manifest.get("extra") or {}), "demo": "weights only: the optimiser starts afresh"})


if __name__ == "__main__":
    sys.exit(main())
