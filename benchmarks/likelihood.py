"""Held-out negative log-likelihood of the likelihood models on the real MNIST test set.

Protocol (issue 13): the 10,000 real MNIST test images (IDX files, any path) split 9,000 train / 1,000
held out (the data set's fixed split). The Bernoulli models (``fvsbn``, ``nade``, ``made``, ``pixelcnn``,
``vae``, ``vae-iaf``) train and are evaluated on ``binarized:idx:PATH``, the static binarisation with
seed 0 (:mod:`engines.data.binarize`: pixel j of image i is 1 iff U_ij < x_ij, U_i drawn by
``numpy.random.default_rng([0, i])``); their NLL is in nats per image. The flows (``nice``, ``realnvp``,
``glow``) train on the 8-bit grey images under uniform dequantisation and report bits/dim in the 8-bit
space. Each model is the real ``latent-studio train`` command in its own process, batch 64, Adam at
the model's default learning rate, stopped by ``--budget`` seconds of training (the steps done are in
the table); the VAEs add the IWAE bound with ``--iwae-k`` samples. The figure is the mean over the 1,000
held-out images (exact for the flows and autoregressive models; the one-sample ELBO for the VAEs).
Then one PixelCNN sample is timed (median of 3, one 28x28 image, this process, CPU threads as given).

    python benchmarks/likelihood.py --mnist DIR [--budget 120] [--models fvsbn nade made:n_masks=1 ...] [--out runs/bench-likelihood] [--table-only]

A model may carry settings after a colon (``made:n_masks=1,hidden=250``: ``latent-studio train --set``).

DIR holds ``t10k-images-idx3-ubyte.gz`` (the MNIST test images, from the MNIST distribution).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BERNOULLI = ("fvsbn", "nade", "made", "pixelcnn", "gated-pixelcnn", "vae", "vae-iaf")
FLOWS = ("nice", "realnvp", "glow")
#: Published held-out NLL, with the protocol named: (nats per image or bits/dim, source).
PUBLISHED = {
    "fvsbn": "96.58 nats (pytorch-generative, dynamic binarisation)",
    "nade": "85.65 nats (pytorch-generative); 88.86 (Larochelle & Murray 2011)",
    "made": "84.87 nats (pytorch-generative); 88.04 (Germain et al. 2015)",
    "pixelcnn": "81.45 nats (pytorch-generative); 81.30 (van den Oord et al. 2016)",
    "gated-pixelcnn": "",
    "vae": "",
    "vae-iaf": "",
    "nice": "4.34 bits/dim (pytorch-generative)",
    "realnvp": "",
    "glow": "",
}


def _train(entry: str, images: Path, out: Path, budget: float, iwae_k: int, threads: int, seed: int) -> dict:
    model, _, settings = entry.partition(":")
    spec = f"binarized:idx:{images}" if model in BERNOULLI else f"idx:{images}"
    cmd = [sys.executable, "-m", "latent_studio", "train", "--data", spec, "--model", model, "--steps", "1000000",
           "--max-seconds", str(budget), "--batch-size", "64", "--seed", str(seed), "--log-every", "50",
           "--threads", str(threads), "--out", str(out)]
    if model.startswith("vae") and iwae_k:
        cmd += ["--iwae-k", str(iwae_k)]
    for pair in filter(None, settings.split(",")):
        cmd += ["--set", pair]
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    return json.loads((out / "run.json").read_text())


def _pixelcnn_sample_seconds(run: Path, threads: int) -> float:
    import torch

    from engines.lib.checkpoint import load_checkpoint

    torch.set_num_threads(threads)
    engine, _ = load_checkpoint(run, device="cpu", with_optimizer=False)
    engine.eval()
    times = []
    for seed in range(3):
        t0 = time.perf_counter()
        engine.sample(1, torch.Generator().manual_seed(seed))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _train_nll(run: Path, threads: int, n: int = 1000) -> float:
    """Mean -log p (nats; the -ELBO for the VAEs) of the first ``n`` training images: against the held-out
    figure, the generalisation gap (9,000 training images overfit quickly)."""
    import numpy as np
    import torch

    from engines.data import load_dataset
    from engines.lib.checkpoint import load_checkpoint, read_manifest

    torch.set_num_threads(threads)
    manifest = read_manifest(run / "model.safetensors")
    engine, _ = load_checkpoint(run, device="cpu", with_optimizer=False)
    engine.eval()
    dataset = load_dataset(manifest["data_spec"], manifest.get("image_size"))
    idx = np.asarray(dataset.train_indices)[:n]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        values = []
        for i in range(0, len(idx), 250):
            x = torch.as_tensor(dataset.get(idx[i : i + 250]))
            lp = engine.log_prob(x) if "exact" in engine.capabilities.likelihood else engine.log_prob(x, generator=gen)
            values.append(lp.double())
    return float(-torch.cat(values).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", type=Path, required=True, help="folder with t10k-images-idx3-ubyte.gz")
    ap.add_argument("--models", nargs="+", default=[*BERNOULLI, *FLOWS])
    ap.add_argument("--budget", type=float, default=120.0, help="seconds of training per model")
    ap.add_argument("--iwae-k", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-likelihood"))
    ap.add_argument("--table-only", action="store_true", help="no training: the table of the runs already in --out")
    args = ap.parse_args()
    images = args.mnist / "t10k-images-idx3-ubyte.gz"
    if not images.exists():
        print(f"MNIST test images not found at {images} (pass --mnist DIR)", file=sys.stderr)
        return 2
    rows = []
    for entry in args.models:
        folder = entry.replace(":", "-").replace(",", "-").replace("=", "")
        if args.table_only:
            run = json.loads((args.out / folder / "run.json").read_text())
        else:
            run = _train(entry, images, args.out / folder, args.budget, args.iwae_k, args.threads, args.seed)
        run["train_nll"] = _train_nll(args.out / folder, args.threads)
        rows.append((entry, run))
    sample_s = None
    if "pixelcnn" in args.models and not args.table_only:
        sample_s = _pixelcnn_sample_seconds(args.out / "pixelcnn", args.threads)
    print()
    print("| model | data | held-out NLL | bits/dim | IWAE | train NLL | steps | train images/s | published (protocol) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for entry, run in rows:
        model = entry.partition(":")[0]
        h, t = run["held_out"], run["train"]
        data = ("binarised (static, seed 0)" if run["config"].get("likelihood", "bernoulli") == "bernoulli"
                and model in BERNOULLI else "8-bit, dequantised" if model in FLOWS else "8-bit, 256-way softmax")
        kind = "" if h["kind"] == "exact" else " (-ELBO)"
        bpd = f"{h['bits_per_dim']:.3f}" if "bits_per_dim" in h else ""
        iwae = f"{-h['iwae_nats']:.2f} (k={h['iwae_k']})" if h.get("iwae_nats") is not None else ""
        print(f"| {entry} | {data} | {h['nll_nats']:.2f} +- {h['stderr']:.2f} nats{kind} | {bpd} | {iwae} "
              f"| {run['train_nll']:.2f} | {t['steps']} | {t['images_per_sec']:.0f} | {PUBLISHED.get(model, '')} |")
    if sample_s is not None:
        print(f"\nOne 28x28 PixelCNN sample: {sample_s:.2f} s (median of 3, {args.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
