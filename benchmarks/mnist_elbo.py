"""Held-out ELBO and training speed of a VAE on the real MNIST test set, through the `idx:` loader.

Protocol (issue 2, section 9): the 10,000 real MNIST test images split 9,000 train / 1,000 held out
(the data set's fixed split), `vae` with 20 latent dimensions, batch 128, Adam 1e-3, 5 epochs,
Bernoulli decoder; once with the convolutional networks and once with `--arch mlp` (784-400-20, the
network of the PyTorch examples VAE). Each run is the real `latent-studio train` command in its own
process. Prints a Markdown table: held-out ELBO (nats per image, higher is better), IWAE bound, and
training images per second.

    python benchmarks/mnist_elbo.py --mnist DIR [--epochs 5] [--out runs/bench-mnist]

DIR holds ``t10k-images-idx3-ubyte.gz`` (the MNIST test images, from the MNIST distribution).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", type=Path, required=True, help="folder with t10k-images-idx3-ubyte.gz")
    ap.add_argument("--epochs", type=float, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iwae-k", type=int, default=50)
    ap.add_argument("--archs", nargs="+", default=["conv", "mlp"])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-mnist"))
    args = ap.parse_args()
    images = args.mnist / "t10k-images-idx3-ubyte.gz"
    if not images.exists():
        print(f"MNIST test images not found at {images} (pass --mnist DIR)", file=sys.stderr)
        return 2
    rows = []
    for arch in args.archs:
        out = args.out / arch
        cmd = [
            sys.executable, "-m", "latent_studio", "train", "--data", f"idx:{images}", "--model", "vae",
            "--arch", arch, "--latent-dim", "20", "--batch-size", "128", "--lr", "1e-3", "--epochs", str(args.epochs),
            "--seed", str(args.seed), "--iwae-k", str(args.iwae_k), "--log-every", "10", "--out", str(out),
        ]
        print("$", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True)
        run = json.loads((out / "run.json").read_text())
        rows.append((arch, run))
    print()
    print("| arch | epochs | steps | held-out ELBO (nats/image) | held-out IWAE k=%d (nats/image) | train images/s | device |" % args.iwae_k)
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for arch, run in rows:
        t, h = run["train"], run["held_out"]
        print(
            f"| {arch} | {t['epochs']:.2f} | {t['steps']} | {h['nats']:.2f} | {h.get('iwae_nats', float('nan')):.2f} "
            f"| {t['images_per_sec']:.0f} | {t['device']} ({t['threads']} threads) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
