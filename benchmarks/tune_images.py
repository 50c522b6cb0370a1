"""Tuning runs for the image training loop on one GPU (issue 7): which change moves the FM step
of the CIFAR U-Net, measured in one process next to the peer (torchcfm's U-Net, plain fp32).

    python benchmarks/tune_images.py [--out rows.jsonl] [--only NAME ...] [--profile]

Each variant is the project's own training path (flowviz.images.experiment.build_image +
flowviz.train.train_steps) with one setting changed; "old loop" = the NaN flags read after every
step and the batch drawn by a CPU generator (what train_steps/build_image did before).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_images import peer_unet, plain_loop, timed  # noqa: E402

from flowviz.images.experiment import ImageRun, build_image  # noqa: E402
from flowviz.models import CIFAR_UNET  # noqa: E402
from flowviz.train import OptimConfig, train_steps  # noqa: E402

GiB = 2**30
CHUNK = 10


def state_for(method="fm", precision="fp32", cl=False, batch=128, **mf):
    optim = OptimConfig(steps=10**9, lr=2e-4, warmup=0)
    run = ImageRun(data="cifar10", root="(synthetic)", size=32, batch=batch, model=CIFAR_UNET,
                   optim=optim, method=method, precision=precision, channels_last=cl)
    if mf:
        run = dataclasses.replace(run, meanflow=dataclasses.replace(run.meanflow, **mf))
    images = (torch.rand(4096, 3, 32, 32) * 2 - 1, torch.zeros(4096, dtype=torch.long))
    return build_image(run, "cuda", images=images)


def measure(name, st, batch, rows, out, reps=3, calls=2, warm=1, check_every=None, **extra):
    torch.cuda.reset_peak_memory_stats()
    try:
        for _ in range(warm):
            train_steps(st, CHUNK, log_every=10**9, check_every=check_every)
        s = timed(lambda: train_steps(st, CHUNK, log_every=10**9, check_every=check_every),
                  3 * calls, 0)
        row = {"name": name, "ms_step": 1e3 * s / CHUNK, "img_s": batch * CHUNK / s,
               "peak_GiB": torch.cuda.max_memory_allocated() / GiB, "status": st.status,
               **extra}
    except Exception as e:  # noqa: BLE001 - a failed variant is a result too
        row = {"name": name, "error": f"{type(e).__name__}: {str(e)[:300]}", **extra}
    rows.append(row)
    print(json.dumps(row), flush=True)
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")
    return row


def old_loop(st):
    """The previous behaviour: CPU generator (host draws + copies) and a check every step."""
    st.generator = torch.Generator().manual_seed(0)
    return 1


def profile(st, out_dir, name):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    train_steps(st, 3, log_every=10**9)
    torch.cuda.synchronize()
    with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        t0 = time.perf_counter()
        train_steps(st, 5, log_every=10**9)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    ev = p.key_averages()
    cuda_total = sum(e.self_device_time_total for e in ev) / 5 / 1e3
    table = ev.table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=60)
    text = f"== {name}: wall {1e3 * wall / 5:.1f} ms/step, GPU busy {cuda_total:.1f} ms/step\n"
    print(text + table[:6000], flush=True)
    if out_dir:
        Path(out_dir, f"profile_{name}.txt").write_text(text + table)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--outdir")
    p.add_argument("--only", nargs="*")
    a = p.parse_args(argv)
    rows: list[dict] = []
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}", flush=True)

    def want(n):
        return not a.only or n in a.only

    b = 128
    if want("peer"):
        peer = peer_unet().cuda()
        peer.peer = True
        s = timed(plain_loop(peer, b, torch.device("cuda")), 30, 8)
        row = {"name": "torchcfm plain fp32", "ms_step": 1e3 * s, "img_s": b / s}
        rows.append(row)
        print(json.dumps(row), flush=True)
        del peer
    if want("eager"):
        for prec, cl in (("fp32", False), ("bf16", True)):
            st = state_for("fm", prec, cl)
            measure(f"fm {prec}{' cl' if cl else ''} eager", st, b, rows, a.out)
            measure(f"fm {prec}{' cl' if cl else ''} eager old loop", st, b, rows, a.out,
                    check_every=old_loop(st))
            del st
    for mode in ("default", "reduce-overhead"):
        if not want(mode):
            continue
        st = state_for("fm", "bf16", True)
        st.model.compile(mode=None if mode == "default" else mode)
        measure(f"fm bf16 cl compile {mode}", st, b, rows, a.out, warm=3)
        if mode == "default" and a.outdir:
            profile(st, a.outdir, "bf16_compile")
        measure(f"fm bf16 cl compile {mode} old loop", st, b, rows, a.out,
                check_every=old_loop(st), warm=1)
        del st
        torch._dynamo.reset()
    if want("ratios"):
        for prec, cl in (("fp32", False), ("bf16", True)):
            for m in ("fm", "shortcut", "meanflow"):
                st = state_for(m, prec, cl)
                measure(f"{m} {prec} eager", st, b, rows, a.out, method=m)
                if m == "meanflow" and prec == "fp32" and a.outdir:
                    profile(st, a.outdir, "meanflow_fp32")
                del st
    if want("tf32"):
        torch.backends.cuda.matmul.allow_tf32 = True
        st = state_for("fm", "fp32", True)
        st.model.compile()
        measure("fm fp32(tf32) cl compile default", st, b, rows, a.out, warm=3)
        torch.backends.cuda.matmul.allow_tf32 = False
    print("\n".join(f"{r['name']:44s} {r.get('img_s', 0):8.0f} img/s "
                    f"{r.get('ms_step', 0):7.2f} ms {r.get('peak_GiB', 0):5.1f} GiB "
                    f"{r.get('error', '')[:80]}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
