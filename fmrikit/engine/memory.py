"""GPU memory estimated without a GPU: models built on PyTorch's ``meta`` device (shapes only), the bytes autograd
saves for the backward of one step, the peak of live tensors of a no-grad pass.

Exact: parameter counts. Measured device-independently: the tensors a step keeps (CUDA autocast's dtype policy and
flash attention emulated). Not included: the CUDA context, cuDNN/cuBLAS workspaces, allocator fragmentation
(hence :data:`HEADROOM`). Method plans build on these (:func:`training_plan` for a plain supervised step; the
NeuroPictor plan for its several networks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator
from fmrikit.checks import check_option


if TYPE_CHECKING:  # torch stays out of ``import fmrikit``
    import torch
    from torch import nn

GIB = 1024 ** 3
#: Cards a plan is judged against (GiB).
COMMON_GPUS_GIB: dict[str, int] = {
    "24 GiB (RTX 3090/4090, A5000)": 24,
    "40 GiB (A100 40GB)": 40,
    "48 GiB (RTX A6000, L40S)": 48,
    "80 GiB (A100 80GB, H100)": 80,
}
HEADROOM = 0.9  # a plan "fits" under 90% of the card: the CUDA context and fragmentation take the rest
PRECISIONS = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (shared parameters once); works on ``meta`` modules."""
    seen: dict[int, int] = {}
    for p in module.parameters():
        if not trainable_only or p.requires_grad:
            seen[id(p)] = p.numel()
    return sum(seen.values())


def storage_key(t: torch.Tensor) -> int:
    from torch.multiprocessing.reductions import StorageWeakRef

    return StorageWeakRef(t.untyped_storage()).cdata


def tensors_of(obj: Any) -> Iterator[torch.Tensor]:
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from tensors_of(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from tensors_of(o)


class ByteCounter:
    """Bytes of distinct storages, each counted once; the keys of ``exclude`` (weights) never."""

    def __init__(self, exclude: set[int]):
        self.exclude = exclude
        self.seen: set[int] = set()
        self.bytes = 0
        self.largest = 0

    def add(self, t: torch.Tensor) -> None:
        key = storage_key(t)
        if key in self.exclude or key in self.seen:
            return
        self.seen.add(key)
        n = t.untyped_storage().nbytes()
        self.bytes += n
        self.largest = max(self.largest, n)


def mixed_precision_mode(low: torch.dtype | None, exclude: set[int]):
    """A torch-function mode that stands in for CUDA on the meta device.

    * ``scaled_dot_product_attention`` runs the flash-attention op, which saves q, k, v, the output and
      the log-sum-exp as on a GPU, instead of the math fallback the meta device would pick (which saves
      the full attention matrix in float32).
    * With ``low`` set, it follows CUDA autocast's policy for the ops that matter for memory: matmuls and
      convolutions in ``low``, normalisations, softmax and losses in float32. Casts of parameters are cached,
      as autocast does, and their storages join ``exclude`` (they are weights, counted with the weights).
    """
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    lower = {F.linear, F.conv1d, F.conv2d, torch.matmul, torch.bmm, torch.baddbmm, torch.addmm,
             torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.bmm}
    upper = {F.layer_norm, F.group_norm, F.softmax, F.log_softmax, torch.softmax, torch.Tensor.softmax,
             F.mse_loss, F.cross_entropy}
    sdpa = F.scaled_dot_product_attention
    cache: dict[tuple[int, torch.dtype], torch.Tensor] = {}

    def cast(obj: Any, dtype: torch.dtype) -> Any:
        if isinstance(obj, torch.Tensor):
            if not obj.is_floating_point() or obj.dtype == dtype:
                return obj
            if isinstance(obj, torch.nn.Parameter):
                key = (id(obj), dtype)
                if key not in cache:
                    cache[key] = obj.to(dtype)
                    exclude.add(storage_key(cache[key]))
                return cache[key]
            return obj.to(dtype)
        if isinstance(obj, (list, tuple)):
            return type(obj)(cast(o, dtype) for o in obj)
        return obj

    def flash(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if attn_mask is not None or enable_gqa or query.shape[-1] > 256:
            return sdpa(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                        scale=scale, enable_gqa=enable_gqa)
        if low is not None:
            query, key, value = cast(query, low), cast(key, low), cast(value, low)
        return torch.ops.aten._scaled_dot_product_flash_attention(query, key, value, dropout_p, is_causal, False,
                                                                  scale=scale)[0]

    def linear(x, weight, bias=None):
        if low is not None:
            x, weight, bias = cast(x, low), cast(weight, low), cast(bias, low)
        return F.linear(x, weight, bias)

    def self_attention(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias, bias_k,
                       bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training=True,
                       key_padding_mask=None, need_weights=True, attn_mask=None, use_separate_proj_weight=False,
                       is_causal=False, **rest):
        """``F.multi_head_attention_forward`` for plain self-attention, op for op as torch runs it (in-projection,
        contiguous copy, fused attention, out-projection); None for any other use, which then runs as is
        (its attention unfused, its projections in the input dtype: an over-count)."""
        simple = (query is key and key is value and query.dim() == 3 and not need_weights and attn_mask is None
                  and key_padding_mask is None and bias_k is None and bias_v is None and not add_zero_attn
                  and not use_separate_proj_weight and not any(v is not None for v in rest.values()
                                                               if not isinstance(v, bool)))
        if not simple:
            return None
        length, batch, width = query.shape
        head = width // num_heads
        proj = linear(query, in_proj_weight, in_proj_bias)
        proj = proj.unflatten(-1, (3, width)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous()
        q, k, v = (p.view(length, batch, num_heads, head).permute(1, 2, 0, 3) for p in proj)
        out = flash(q, k, v, dropout_p=dropout_p if training else 0.0, is_causal=is_causal)
        out = out.permute(2, 0, 1, 3).contiguous().view(batch * length, width)
        return linear(out, out_proj_weight, out_proj_bias).view(length, batch, width), None

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is sdpa:
                return flash(*args, **kwargs)
            if func is F.multi_head_attention_forward:  # its inner ops run with this mode off: redo them here
                out = self_attention(*args, **kwargs)
                if out is not None:
                    return out
            if low is not None and func in lower:
                return func(*cast(args, low), **{k: cast(v, low) for k, v in kwargs.items()})
            if low is not None and func in upper:
                return func(*cast(args, torch.float32), **{k: cast(v, torch.float32) for k, v in kwargs.items()})
            return func(*args, **kwargs)

    mode = Mode()
    mode.cache = cache  # the parameters' casts, for the static memory
    return mode


class LivePeak:
    """Peak bytes of live tensors created by aten ops under it (weights excluded), via a dispatch mode."""

    def __init__(self, exclude: set[int]):
        from torch.utils._python_dispatch import TorchDispatchMode

        tracker = self
        self.exclude = exclude
        self.live: dict[int, tuple[Any, int]] = {}
        self.current = 0
        self.peak = 0

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                tracker._update(out)
                return out

        self.mode = Mode()

    def _update(self, out: Any) -> None:
        from torch.multiprocessing.reductions import StorageWeakRef

        for key in [k for k, (ref, _) in self.live.items() if ref.expired() or k in self.exclude]:
            self.current -= self.live.pop(key)[1]
        for t in tensors_of(out):
            ref = StorageWeakRef(t.untyped_storage())
            if ref.cdata in self.exclude or ref.cdata in self.live:
                continue
            n = t.untyped_storage().nbytes()
            self.live[ref.cdata] = (ref, n)
            self.current += n
        self.peak = max(self.peak, self.current)


def measure_no_grad_peak(fn: Callable[[], Any], exclude: set[int], low: torch.dtype | None) -> int:
    """Peak bytes of live tensors (weights excluded) while ``fn`` runs without gradients on the meta device."""
    import torch

    live = LivePeak(exclude)
    with torch.no_grad(), mixed_precision_mode(low, exclude), live.mode:
        out = fn()
        del out
    return live.peak


def verdict(need: float, capacity: float) -> str:
    return "fits" if need <= HEADROOM * capacity else "tight" if need <= capacity else "no"


def format_gib(n: float | None) -> str:
    return "-" if n is None else f"{n / GIB:.2f} GiB"


def format_millions(n: float) -> str:
    return f"{n / 1e9:.3f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def training_plan(name: str, build: Callable[[], dict[str, nn.Module]], step: Callable[[dict[str, nn.Module], int], Any],
                  *, trainable: set[str], batch_size: int, precision: str = "bf16",
                  settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Estimate the GPU memory of a supervised training step: weights, AdamW state, what one step keeps.

    Parameters
    ----------
    name : str
        The plan's name (e.g. ``"decoder"``).
    build : callable
        ``build()`` -> the modules by name; called on the ``meta`` device (shapes only, no storage).
    step : callable
        ``step(modules, batch)`` -> the loss of one training step on meta inputs of ``batch`` samples.
    trainable : set of str
        Names of the modules that train (float32 weights, gradients and two AdamW moments: 16 bytes a
        parameter); the others are frozen, stored in the compute precision.
    batch_size : int
        Samples per GPU and step.
    precision : {"bf16", "fp16", "fp32"}
        Autocast precision (float32 master weights), or float32 throughout.
    settings : dict, optional
        Recorded as the plan's settings.

    Returns
    -------
    dict
        ``plan``, ``estimate``, ``settings``, ``components`` (parameters per module), ``parameters``,
        ``training`` (bytes: static, activations per sample, transient, total), ``gpus`` (verdicts and the
        largest batch per common card) and ``current_device``. Memory in bytes.
    """
    import torch

    check_option("precision", precision, PRECISIONS)
    low = None if precision == "fp32" else getattr(torch, PRECISIONS[precision])
    with torch.device("meta"):
        models = build()
    counts = {k: count_parameters(m) for k, m in models.items()}
    n_train = sum(counts[k] for k in trainable)
    compute = torch.empty((), dtype=getattr(torch, PRECISIONS[precision])).element_size()
    for k, m in models.items():
        m.train().requires_grad_(k in trainable)
        if k not in trainable and low is not None:
            m.to(low)
    exclude = {storage_key(p) for m in models.values() for p in m.parameters()}
    exclude |= {storage_key(b) for m in models.values() for b in m.buffers()}
    counter = ByteCounter(exclude)
    with mixed_precision_mode(low, exclude), \
            torch.autograd.graph.saved_tensors_hooks(lambda t: (counter.add(t), t)[1], lambda t: t):
        loss = step(models, 1)
    del loss
    static = (sum(counts.values()) - n_train) * compute + 16 * n_train
    per_sample, transient = counter.bytes, 4 * counter.largest
    total = max(static + (per_sample + transient) * batch_size, static + 4 * n_train)

    def max_batch(capacity: float) -> int:
        room = HEADROOM * capacity - static
        return max(0, int(room // max(per_sample + transient, 1))) if room > 4 * n_train else 0

    gpus = [{"name": g, "memory_bytes": gib * GIB, "training": verdict(total, gib * GIB),
             "max_training_batch": max_batch(gib * GIB)} for g, gib in COMMON_GPUS_GIB.items()]
    current = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        current = {"name": props.name, "memory_bytes": int(props.total_memory),
                   "training": verdict(total, props.total_memory), "max_training_batch": max_batch(props.total_memory)}
    return {"plan": name, "estimate": True,
            "note": "estimate from models built on the meta device, not a measurement on a GPU",
            "settings": {"batch_size": batch_size, "precision": precision, **(settings or {})},
            "components": [{"name": k, "parameters": counts[k], "trainable": k in trainable} for k in models],
            "parameters": {"total": sum(counts.values()), "trainable": n_train},
            "training": {"static_bytes": static, "activation_bytes_per_sample": per_sample,
                         "backward_transient_bytes_per_sample": transient, "total_bytes": total},
            "gpus": gpus, "current_device": current}


def plan_rows(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A :func:`training_plan` as (section, item, value) rows for a table."""
    tr = plan["training"]
    rows = [("", "estimate", plan["note"])]
    rows += [("settings", k.replace("_", " "), str(v)) for k, v in plan["settings"].items()]
    rows += [("parameters", c["name"], f"{c['parameters']:,} ({format_millions(c['parameters'])}, "
              f"{'trainable' if c['trainable'] else 'frozen'})") for c in plan["components"]]
    rows += [("training", "weights + grads + AdamW (static)", format_gib(tr["static_bytes"])),
             ("training", "activations per sample", format_gib(tr["activation_bytes_per_sample"])),
             ("training", "backward transient per sample", format_gib(tr["backward_transient_bytes_per_sample"])),
             ("training", f"TOTAL at batch {plan['settings']['batch_size']}", format_gib(tr["total_bytes"]))]
    rows += [("fit", g["name"], f"{g['training']} (max batch {g['max_training_batch']})") for g in plan["gpus"]]
    cur = plan["current_device"]
    rows.append(("fit", "this machine", "no CUDA device" if cur is None else
                 f"{cur['name']}: {cur['training']} (max batch {cur['max_training_batch']})"))
    return rows
