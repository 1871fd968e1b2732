"""What the CUDA path does at the field's sizes: one table, from synthetic data, in a few minutes on one GPU.

Sections (each in this process unless said otherwise; ``--dry-run`` runs them all at tiny sizes on the CPU):

* ``decoder``: MindEye2-size decoder training (hidden 4096, 4 blocks, 15,724 voxels, batch 32, bf16 autocast)
  through :func:`fmrikit.methods.mindeye.loop.fit`: trials/s and peak ``torch.cuda.max_memory_allocated``;
  new-subject adaptation (frozen backbone, batch 24) and the time one NSD session (750 trials) x the default
  epochs would take;
* ``troi``: TROI stage 1 over an NSD-sized brain mask (200,000 voxels, a new input layer and the voxel gate) at
  hidden 256 and 4096: seconds per 750-trial epoch and peak memory;
* ``encoder``: universal-encoder training (32 images x 5000 voxels per step) in (image, voxel) samples/s and
  inference ms/image over 15,724 voxels (the paper: 50 ms);
* ``neuropictor``: the ``sys-info --plan neuropictor`` estimate against the measured peak memory of three
  training steps of a mid-sized configuration on real Stable Diffusion 2.1 configs with random weights, frozen
  parts in bf16 as the plan assumes, and as fmrikit trains them today (float32 under autocast);
* ``probe``: a short decoder run, timed from outside by ``gpu_check.sh`` as a plain process and under
  ``torchrun --nproc_per_node=1``.

    python benchmarks/gpu_check.py [--dry-run] [--sections decoder,troi,encoder,neuropictor] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

#: The field's sizes, and the tiny ones of --dry-run.
FULL = dict(voxels=15_724, brainmask=200_000, hidden=4096, blocks=4, embed=768, batch=32, trials=1500,
            session=750, troi_hidden=(256, 4096), enc_images=32, enc_voxels=5000, enc_levels=5, enc_patches=49,
            enc_channels=192, enc_train=1024, enc_infer=128, np_image=256, np_flatmap=128, np_width=512,
            np_depth=8, np_heads=8, np_batch=8, np_unet={})
TINY = dict(voxels=300, brainmask=2_000, hidden=32, blocks=1, embed=16, batch=8, trials=64, session=750,
            troi_hidden=(16, 32), enc_images=8, enc_voxels=50, enc_levels=2, enc_patches=4, enc_channels=8,
            enc_train=32, enc_infer=8, np_image=64, np_flatmap=32, np_width=32, np_depth=1, np_heads=2, np_batch=2,
            np_unet=dict(block_out_channels=(32, 32, 64, 64), attention_head_dim=(2, 2, 4, 4), layers_per_block=1))
GIB = 1024 ** 3


@dataclass
class Row:
    section: str
    measure: str
    value: float | None
    unit: str
    note: str = ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _subject(key: str, n_trials: int, n_voxels: int, rng: np.random.Generator):
    """Random z-scored betas of one subject (no dataset behind them)."""
    from types import SimpleNamespace

    from fmrikit.data.splits import SubjectData

    x = torch.from_numpy(rng.standard_normal((n_trials, n_voxels), dtype=np.float32))
    info = SimpleNamespace(ijk=np.zeros((n_voxels, 3), np.int32))
    return SubjectData(key=key, info=info, columns=np.arange(n_voxels), train_x=x, train_stim=np.arange(n_trials),
                       test_x=x[:2], test_stim=np.arange(2))


def decoder(s: dict, device: torch.device) -> list[Row]:
    """MindEye2-size pretraining throughput, and new-subject adaptation on the frozen backbone."""
    from fmrikit.engine.distributed import Distributed
    from fmrikit.methods.mindeye.adapt import train_input_layer
    from fmrikit.methods.mindeye.loop import fit
    from fmrikit.methods.mindeye.model import MindEyeDecoder
    from fmrikit.methods.mindeye.settings import SUBJECT_BATCH_SIZE, TrainSettings

    rng = np.random.default_rng(0)
    ctx = Distributed(0, 1, device)
    data = [_subject("sub-02", s["trials"], s["voxels"], rng)]
    targets = torch.randn(s["trials"], s["embed"])
    torch.manual_seed(0)
    model = MindEyeDecoder({"sub-02": s["voxels"]}, embed_dim=s["embed"], hidden=s["hidden"], n_blocks=s["blocks"],
                           proj_hidden=s["hidden"]).to(device)
    settings = TrainSettings(epochs=1, batch_size=s["batch"])
    run = lambda: fit(model, data, {"sub-02": targets.to(device)}, settings, ctx,  # noqa: E731
                      param_groups=[{"params": model.parameters()}])
    run()  # warm-up: kernels, allocator
    _peak_reset(device)
    seconds = _timed(run, device)
    rows = [Row("decoder", f"pretrain, {s['voxels']} voxels, hidden {s['hidden']} x {s['blocks']} blocks, batch "
                f"{s['batch']}", s["trials"] / seconds, "trials/s", "bf16 autocast" if device.type == "cuda" else ""),
            Row("decoder", "pretrain peak memory", _peak_gib(device), "GiB")]
    new = _subject("sub-01", s["trials"], s["voxels"], rng)
    adapt = TrainSettings(epochs=1, batch_size=SUBJECT_BATCH_SIZE)
    go = lambda: train_input_layer(model, new, targets, adapt, ctx, train_shared=False)  # noqa: E731
    go()
    _peak_reset(device)
    seconds = _timed(go, device)
    rate = s["trials"] / seconds
    rows += [Row("decoder", f"adapt-subject (frozen backbone, batch {SUBJECT_BATCH_SIZE})", rate, "trials/s"),
             Row("decoder", f"one NSD session ({s['session']} trials) x {TrainSettings.epochs} epochs",
                 s["session"] * TrainSettings.epochs / rate, "s", "estimated from the rate above"),
             Row("decoder", "adapt-subject peak memory", _peak_gib(device), "GiB")]
    return rows


def troi(s: dict, device: torch.device) -> list[Row]:
    """TROI stage 1 over an NSD-sized brain mask: a new input layer and the voxel gate, the backbone frozen."""
    from fmrikit.engine.distributed import Distributed
    from fmrikit.methods.mindeye.adapt import set_trainable
    from fmrikit.methods.mindeye.loop import fit
    from fmrikit.methods.mindeye.model import MindEyeDecoder
    from fmrikit.methods.mindeye.settings import SUBJECT_BATCH_SIZE, TrainSettings
    from fmrikit.methods.troi.gate import VoxelGate
    from fmrikit.methods.troi.settings import TroiSettings

    rng = np.random.default_rng(1)
    ctx = Distributed(0, 1, device)
    rows = []
    n = s["session"] if device.type == "cuda" else s["trials"]
    data = [_subject("sub-01", n, s["brainmask"], rng)]
    targets = torch.randn(n, s["embed"]).to(device)
    troi_settings = TroiSettings()
    for hidden in s["troi_hidden"]:
        torch.manual_seed(0)
        model = MindEyeDecoder({"sub-02": 8}, embed_dim=s["embed"], hidden=hidden, n_blocks=s["blocks"],
                               proj_hidden=hidden)
        model.add_subject("sub-01", s["brainmask"])
        model.to(device)
        gate = VoxelGate(s["brainmask"], troi_settings.threshold, troi_settings.lasso).to(device)
        groups = [{"params": set_trainable(model, "sub-01", False)},
                  {"params": [gate.weight], "lr": troi_settings.mask_lr, "weight_decay": 0.0}]
        settings = TrainSettings(epochs=1, batch_size=SUBJECT_BATCH_SIZE, lr=troi_settings.stage1_lr)
        run = lambda: fit(model, data, {"sub-01": targets}, settings, ctx, param_groups=groups,  # noqa: E731
                          gates={"sub-01": gate})
        run()
        _peak_reset(device)
        seconds = _timed(run, device)
        rows += [Row("troi", f"stage 1, {s['brainmask']} voxels, hidden {hidden}: one {n}-trial epoch", seconds, "s"),
                 Row("troi", f"stage 1 peak memory, hidden {hidden}", _peak_gib(device), "GiB",
                     f"input layer {s['brainmask'] * hidden * 4 / GIB:.2f} GiB of float32 weights")]
    return rows


def encoder(s: dict, device: torch.device) -> list[Row]:
    """Universal-encoder training (images x voxels per step) and inference over every voxel of a subject."""
    from fmrikit.engine.distributed import Distributed
    from fmrikit.methods.encoder.fit import EncoderData, fit_encoder, predict
    from fmrikit.methods.encoder.model import UniversalEncoder
    from fmrikit.methods.encoder.settings import EncoderSettings

    rng = np.random.default_rng(2)
    shape = (s["enc_levels"], s["enc_patches"], s["enc_channels"])
    feats = torch.from_numpy(rng.standard_normal((s["enc_train"], *shape), dtype=np.float32)).half()
    y = torch.from_numpy(rng.standard_normal((s["enc_train"], s["voxels"]), dtype=np.float32))
    data = EncoderData(key="sub-01", info=None, train_stim=np.arange(s["enc_train"]), train_y=y, train_features=feats,
                       test_stim=np.arange(2), test_y=y[:2], test_features=feats[:2])
    torch.manual_seed(0)
    model = UniversalEncoder({"sub-01": s["voxels"]}, n_levels=shape[0], n_patches=shape[1], in_channels=shape[2])
    model.to(device)
    settings = EncoderSettings(epochs=1, batch_images=s["enc_images"], voxels_per_image=s["enc_voxels"])
    ctx = Distributed(0, 1, device)
    run = lambda: fit_encoder(model, [data], settings, ctx)  # noqa: E731
    run()
    _peak_reset(device)
    seconds = _timed(run, device)
    samples = s["enc_train"] * min(s["enc_voxels"], s["voxels"])
    rows = [Row("encoder", f"training, {s['enc_images']} images x {s['enc_voxels']} voxels per step",
                samples / seconds, "samples/s", "(image, voxel) pairs"),
            Row("encoder", "training peak memory", _peak_gib(device), "GiB")]
    test = feats[:s["enc_infer"]]
    predict(model, test[:2], "sub-01", device=device)
    seconds = _timed(lambda: predict(model, test, "sub-01", device=device), device)
    rows.append(Row("encoder", f"inference over {s['voxels']} voxels", 1000 * seconds / len(test), "ms/image",
                    "the paper: 50 ms"))
    return rows


def neuropictor(s: dict, device: torch.device) -> list[Row]:
    """The memory plan against three measured training steps on SD 2.1-shaped modules (random weights)."""
    from fmrikit.methods.neuropictor.plan import plan_neuropictor

    cfg = dict(image_size=s["np_image"], flatmap_size=s["np_flatmap"], ae_width=s["np_width"], ae_depth=s["np_depth"],
               ae_heads=s["np_heads"])
    plan = plan_neuropictor(s["np_batch"], precision="bf16", **cfg)
    setting = (f"image {s['np_image']} px, flatmap {s['np_flatmap']}, AE {s['np_width']} x {s['np_depth']}, "
               f"batch {s['np_batch']}")
    rows = [Row("neuropictor", f"plan (estimate), {setting}", plan["training"]["total_bytes"] / GIB, "GiB",
                "sys-info --plan neuropictor")]
    if device.type != "cuda":  # the steps run on a tiny U-Net: the code path, not the memory
        _, seconds = _neuropictor_steps(s, device, cfg, "fp32")
        return rows + [Row("neuropictor", "measured peak memory", None, "GiB", f"needs CUDA ({seconds:.2f} s/step "
                           "of a tiny U-Net on the CPU)")]
    for frozen in ("bf16", "fp32"):
        peak, seconds = _neuropictor_steps(s, device, cfg, frozen)
        note = "frozen parts in bf16, as the plan assumes" if frozen == "bf16" else \
            "frozen parts in float32 under autocast, as fmrikit trains today"
        rows.append(Row("neuropictor", f"measured peak memory, {note}", peak, "GiB",
                        f"plan/measured {plan['training']['total_bytes'] / GIB / peak:.2f}; {seconds:.2f} s/step"))
    return rows


def _neuropictor_steps(s: dict, device: torch.device, cfg: dict, frozen: str) -> tuple[float, float]:
    """Peak memory (GiB) and seconds per step of three NeuroPictor training steps (AdamW, bf16 autocast)."""
    from diffusers import UNet2DConditionModel

    from fmrikit.diffusion import quiet_loading
    from fmrikit.methods.neuropictor.model import build_neuropictor
    from fmrikit.methods.neuropictor.plan import SD21_UNET_CONFIG, TEXT_TOKENS, VAE_SCALE
    from fmrikit.methods.neuropictor.train import NeuroPictorModules

    torch.manual_seed(0)
    latent = cfg["image_size"] // VAE_SCALE
    unet = UNet2DConditionModel(**dict(SD21_UNET_CONFIG, sample_size=latent, **s["np_unet"]))
    encoder = dict(image_size=cfg["flatmap_size"], patch_size=16, width=cfg["ae_width"], depth=cfg["ae_depth"],
                   heads=cfg["ae_heads"])
    conditioner, controlnet = build_neuropictor(encoder, unet, text_tokens=TEXT_TOKENS,
                                                text_width=SD21_UNET_CONFIG["cross_attention_dim"],
                                                vae_downsamplings=int(math.log2(VAE_SCALE)))
    _peak_reset(device)
    unet.requires_grad_(False)
    with quiet_loading():  # diffusers warns on casting a model with .to(dtype)
        unet.to(device, torch.bfloat16 if frozen == "bf16" else torch.float32).eval()
    modules = NeuroPictorModules(conditioner, controlnet).to(device).train()
    optimizer = torch.optim.AdamW(modules.parameters(), lr=1e-4, weight_decay=0.01)
    b = s["np_batch"]
    flatmaps = torch.randn(b, cfg["flatmap_size"], cfg["flatmap_size"], device=device)
    z0 = torch.randn(b, 4, latent, latent, device=device)
    times = []
    for _ in range(3):
        _sync(device)
        t0 = time.perf_counter()
        t = torch.randint(0, 1000, (b,), device=device)
        noise = torch.randn_like(z0)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            semantic, text, down, mid = modules(flatmaps, z0 + noise, t, VAE_SCALE)
            pred = unet(z0 + noise, t, encoder_hidden_states=semantic, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise) + 0.1 * text.float().pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    peak = _peak_gib(device)
    del unet, modules, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return peak, float(np.median(times[1:]))


SECTIONS = {"decoder": decoder, "troi": troi, "encoder": encoder, "neuropictor": neuropictor}


def probe(s: dict, device: torch.device) -> list[Row]:
    """A short decoder run whose wall time ``gpu_check.sh`` compares plain vs under torchrun."""
    return decoder(dict(s, trials=min(s["trials"], 256)), device)[:1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (checks the script, not the GPU)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device (use --dry-run to check the script on the CPU)")
    device = torch.device("cpu" if args.dry_run else "cuda")
    sizes = TINY if args.dry_run else FULL
    if args.dry_run:
        torch.set_num_threads(1)
    rows: list[Row] = []
    names = ["probe"] if args.probe else [n.strip() for n in args.sections.split(",") if n.strip()]
    for name in names:
        t0 = time.perf_counter()
        try:
            rows += (probe if name == "probe" else SECTIONS[name])(sizes, device)
        except Exception as exc:  # one failing section must not hide the others' figures
            rows.append(Row(name, "FAILED", None, "", f"{type(exc).__name__}: {exc}".splitlines()[0][:200]))
        rows.append(Row(name, "section wall time", time.perf_counter() - t0, "s"))
    device_name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (dry run)"
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device_name, "torch": torch.__version__, "dry_run": args.dry_run,
                       "rows": [r.__dict__ for r in rows]}, f, indent=1)
    print(f"device: {device_name}, torch {torch.__version__}")
    for r in rows:
        value = "n/a" if r.value is None else f"{r.value:.4g}"
        print(f"| {r.section} | {r.measure} | {value} {r.unit} | {r.note} |")


if __name__ == "__main__":
    main()
