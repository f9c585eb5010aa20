"""Export speed: a 60-frame interpolation of a digits VAE written as a 256 px GIF and MP4, in seconds.

The VAE (the registry's ``vae``, conv, 10 latent dimensions, digits at 32 px) is untrained: export
time does not depend on the weights. Each repeat runs :func:`engines.lib.export.export` end to end
(hashing the checkpoint, decoding the 60-frame slerp path through 3 keyframes, upscaling 32 ->
256 px nearest, encoding, writing the file and its sidecar) with one torch thread; the decode
alone is timed too. Prints the median of ``--repeats`` runs as a markdown table (goal: the GIF
in <= 2 s on 2 cores).

    python benchmarks/export.py [--repeats 5] [--frames 60] [--size 256]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()

    import torch

    from engines.lib.checkpoint import save_checkpoint
    from engines.data import load_dataset
    from engines.lib.export import export, frames_for, make_sidecar
    from engines.shared.registry import create_engine

    torch.set_num_threads(1)
    dataset = load_dataset("digits")
    torch.manual_seed(0)
    engine = create_engine("vae", dataset.info, latent_dim=10).eval()
    gen = torch.Generator().manual_seed(0)
    keys = torch.randn(3, 10, generator=gen).tolist()
    latents = {"keyframes": keys, "method": "slerp", "frames": args.frames}
    settings = {"fps": 24, "size": args.size}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        save_checkpoint(engine, run / "model.safetensors", step=0, data_spec="digits")
        side = make_sidecar("interpolation", Path(tmp) / "x.gif", run, latents, settings)
        decode = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            frames = frames_for(engine, side)
            decode.append(time.perf_counter() - t0)
        h, w = frames.shape[-2:]
        for suffix in (".gif", ".mp4"):
            times = []
            for i in range(args.repeats):
                out = Path(tmp) / f"x{i}{suffix}"
                t0 = time.perf_counter()
                export(engine, "interpolation", out, run, latents, settings)
                times.append(time.perf_counter() - t0)
            size_kb = out.stat().st_size / 1024
            rows.append((suffix[1:].upper(), statistics.median(times), min(times), size_kb))
    print(f"{args.frames} frames, {h}x{w} px decoded -> {args.size} px, vae on digits, 1 torch thread, "
          f"{platform.processor() or platform.machine()}; median decode alone {statistics.median(decode) * 1e3:.0f} ms")
    print("| format | frames | size px | median s | min s | file KiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for fmt, med, lo, kb in rows:
        print(f"| {fmt} | {args.frames} | {args.size} | {med:.3f} | {lo:.3f} | {kb:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
