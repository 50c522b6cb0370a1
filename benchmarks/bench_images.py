"""Image training throughput on one GPU (issue 7): CIFAR-shaped batches (3x32x32), the ~35M
U-Net (flowviz.models.CIFAR_UNET) against torchcfm's CIFAR U-Net (UNetModelWrapper, 128
channels, 2 res blocks) in the same process.

Rows: images/s of a flow-matching step through the project's own loop (flowviz.train, with its
NaN guard, clipping and EMA) in fp32 eager, bf16 + channels_last, and + torch.compile (default,
and "reduce-overhead": CUDA graphs);
both networks under the same plain fp32 loop (the peer's recipe: loss, backward, Adam); the
MeanFlow and Shortcut steps against FM (same network, precision, batch), MeanFlow also with its
JVP target launched kernel by kernel instead of replayed as a CUDA graph; peak memory.

Data: random CIFAR-shaped images (throughput does not depend on the pixels). Run:
    python benchmarks/bench_images.py [--quick] [--out results.json] [--skip-compile]
torchcfm is imported from its wheel (carried to the GPU machine); its package __init__ needs POT,
which the peer's U-Net does not, so only torchcfm.models.unet is loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
import traceback
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowviz.images.experiment import ImageRun, build_image  # noqa: E402
from flowviz.models import CIFAR_UNET, TimeUNet, n_params  # noqa: E402
from flowviz.train import OptimConfig, train_steps  # noqa: E402

GiB = 2**30


def peer_unet():
    """torchcfm's CIFAR-10 U-Net as in its examples (35.7M parameters), without torchcfm's
    package __init__ (which imports POT)."""
    spec = importlib.util.find_spec("torchcfm")
    if spec is None:
        raise ImportError("torchcfm is not installed")
    if "torchcfm" not in sys.modules:
        pkg = types.ModuleType("torchcfm")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["torchcfm"] = pkg
    from torchcfm.models.unet.unet import UNetModelWrapper

    return UNetModelWrapper(dim=(3, 32, 32), num_res_blocks=2, num_channels=128,
                            channel_mult=[1, 2, 2, 2], num_heads=4, num_head_channels=64,
                            attention_resolutions="16", dropout=0.1)


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(step, n: int, warm: int) -> float:
    """Seconds per call of ``step`` (median of 3 blocks of n // 3 after ``warm`` calls)."""
    for _ in range(warm):
        step()
    synchronize()
    per = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(max(1, n // 3)):
            step()
        synchronize()
        per.append((time.perf_counter() - t0) / max(1, n // 3))
    return sorted(per)[1]


def plain_loop(model, batch: int, dev, bf16: bool = False):
    """The peer's recipe: x0 ~ N(0, I), x1 data, t ~ U, MSE to x1 - x0, Adam; no EMA/guards."""
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    x1 = torch.rand(batch, 3, 32, 32, device=dev) * 2 - 1

    def step():
        x0 = torch.randn_like(x1)
        t = torch.rand(batch, device=dev)
        xt = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * x1
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            v = model(t, xt) if getattr(model, "peer", False) else model(xt, t)
        loss = (v.float() - (x1 - x0)).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


CHUNK = 10  # steps per train_steps call (each call snapshots the weights for its NaN guard)


def project_loop(run: ImageRun, dev, images):
    state = build_image(run, dev, images=images)
    return state, lambda: train_steps(state, CHUNK, log_every=10**9)


def measure(name, step, batch, n, warm, rows, **extra):
    torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
    try:
        s = timed(step, n, warm)
        mem = torch.cuda.max_memory_allocated() / GiB if torch.cuda.is_available() else 0.0
        rows.append({"name": name, "ms": 1e3 * s, "img_s": batch / s, "peak_GiB": mem, **extra})
    except Exception as e:  # noqa: BLE001 - a failed variant is a result too
        rows.append({"name": name, "error": f"{type(e).__name__}: {str(e)[:300]}", **extra})
        traceback.print_exc()
    r = rows[-1]
    print(f"{name:52s} " + (f"{r['ms']:8.1f} ms  {r['img_s']:8.0f} img/s  {r['peak_GiB']:6.2f} GiB"
                            if "ms" in r else r["error"][:160]), flush=True)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


UNGRAPHED = {"shortcut": " target ungraphed", "meanflow": " JVP target ungraphed"}  # row names


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warm", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="tiny network and batch (CPU check)")
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--only-memory", action="store_true", help="only the MeanFlow memory rows")
    p.add_argument("--out")
    p.add_argument("--compiled", nargs="*", default=["fm:default", "shortcut:default",
                                                      "meanflow:default", "fm:reduce-overhead",
                                                      "shortcut:reduce-overhead"],
                   help="method:mode rows under torch.compile (bf16, channels_last)")
    p.add_argument("--memory", nargs="*", default=["512:0.25:fp32", "512:0.25:bf16",
                                                    "128:1.0:fp32", "512:1.0:bf16"],
                   help="batch:frac_neq:precision rows of MeanFlow memory")
    a = p.parse_args(argv)
    a.compiled = [tuple(v.split(":")) for v in a.compiled]
    a.memory = [(int(b), float(f), pr) for b, f, pr in (v.split(":") for v in a.memory)]
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg, batch = CIFAR_UNET, a.batch
    if a.quick:
        cfg, batch = dataclasses.replace(CIFAR_UNET, base=16, groups=8), 8
        a.steps, a.warm = 3, 1
    images = (torch.rand(4096 if not a.quick else 64, 3, 32, 32) * 2 - 1,
              torch.zeros(4096 if not a.quick else 64, dtype=torch.long))
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"device {gpu}, torch {torch.__version__}, batch {batch}, "
          f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
          f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}", flush=True)
    rows: list[dict] = []
    info = {"device": gpu, "torch": torch.__version__, "batch": batch}
    # --- the two networks under the same plain fp32 loop --------------------------------------
    optim = OptimConfig(steps=10**9, lr=2e-4, warmup=0)
    base = ImageRun(data="cifar10", root="(synthetic)", size=32, batch=batch, model=cfg,
                    optim=optim)
    if a.only_memory:
        meanflow_memory(base, dev, images, rows, a.memory)
        return finish(a, info, rows)
    ours = TimeUNet(cfg).to(dev)
    info["ours_params"] = n_params(ours)
    measure("ours: plain loop fp32", plain_loop(ours, batch, dev), batch, a.steps, a.warm, rows)
    measure("ours: plain loop bf16", plain_loop(ours, batch, dev, True), batch, a.steps, a.warm,
            rows)
    del ours
    try:
        peer = peer_unet().to(dev)
        peer.peer = True
        info["peer_params"] = n_params(peer)
        measure("torchcfm UNetModelWrapper: plain loop fp32", plain_loop(peer, batch, dev),
                batch, a.steps, a.warm, rows)
        measure("torchcfm UNetModelWrapper: plain loop bf16", plain_loop(peer, batch, dev, True),
                batch, a.steps, a.warm, rows)
        del peer
    except ImportError as e:
        info["peer"] = str(e)
        print(f"peer skipped: {e}")
    # --- the project's loop: every method, precision and compile --------------------------------
    variants = [("fm", "fp32", False, ""), ("fm", "bf16", True, ""),
                ("shortcut", "fp32", False, ""), ("shortcut", "bf16", True, ""),
                ("meanflow", "fp32", False, ""), ("meanflow", "bf16", True, "")]
    # Shortcut and MeanFlow with their no-grad targets launched kernel by kernel (graph_target
    # False): the cost the CUDA graph saves
    variants += [(m, p, p == "bf16", "ungraphed") for m in ("shortcut", "meanflow")
                 for p in ("fp32", "bf16")]
    if not a.skip_compile:  # "reduce-overhead": torch.compile with CUDA graphs (fixed shapes)
        variants += [(m, "bf16", True, mode) for m, mode in a.compiled]
    for method, prec, cl, mode in variants:
        comp = mode not in ("", "ungraphed")
        run = dataclasses.replace(base, method=method, precision=prec, channels_last=cl,
                                  compile=comp, compile_mode=mode if comp else "default",
                                  graph_target=mode != "ungraphed")
        name = f"flowviz loop {method} {prec}{' channels_last' if cl else ''}" \
               f"{f' compile {mode}' if comp else ''}" \
               f"{UNGRAPHED[method] if mode == 'ungraphed' else ''}"
        try:
            state, step = project_loop(run, dev, images)
        except Exception as e:  # noqa: BLE001
            rows.append({"name": name, "error": f"{type(e).__name__}: {e}"})
            continue
        measure(name, step, batch * CHUNK, max(3, a.steps // CHUNK), 1 + (2 if comp else 0), rows,
                method=method, precision=prec, compile=comp)
        del state, step
    meanflow_memory(base, dev, images, rows, a.memory)
    return finish(a, info, rows)


def meanflow_memory(base: ImageRun, dev, images, rows, which) -> None:
    """MeanFlow at batch 512 (the paper's 25 % of rows with r != t) and with every row r != t."""
    for b, frac, prec in which:
        run = dataclasses.replace(base, method="meanflow", precision=prec, batch=b,
                                  meanflow=dataclasses.replace(base.meanflow, frac_neq=frac))
        name = f"flowviz loop meanflow {prec} batch {b} frac_neq {frac}"
        try:
            state, step = project_loop(run, dev, images)
            measure(name, step, b * CHUNK, 3, 1, rows, method="meanflow", batch_size=b,
                    frac_neq=frac, precision=prec)
            del state, step
        except Exception as e:  # noqa: BLE001
            rows.append({"name": name, "error": f"{type(e).__name__}: {str(e)[:200]}"})
            print(name, rows[-1]["error"])
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def finish(a, info, rows) -> int:
    if a.out:
        Path(a.out).write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
