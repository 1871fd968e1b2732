"""The memory plans of ``fmrikit sys-info --plan NAME``: each method's paper preset, estimated without a GPU."""

from __future__ import annotations

from typing import Any, Callable

from fmrikit.checks import check_option


def _neuropictor() -> tuple[Callable[..., dict], Callable[[dict], list]]:
    from fmrikit.methods.neuropictor.plan import plan_neuropictor, plan_rows

    return plan_neuropictor, plan_rows


def _latent_mapper() -> tuple[Callable[..., dict], Callable[[dict], list]]:
    from fmrikit.engine.memory import plan_rows
    from fmrikit.methods.latent.plan import plan_latent_mapper

    return plan_latent_mapper, plan_rows


def _troi() -> tuple[Callable[..., dict], Callable[[dict], list]]:
    from fmrikit.engine.memory import plan_rows
    from fmrikit.methods.troi.plan import plan_troi

    return plan_troi, plan_rows


def _encoder() -> tuple[Callable[..., dict], Callable[[dict], list]]:
    from fmrikit.engine.memory import plan_rows
    from fmrikit.methods.encoder.plan import plan_encoder

    return plan_encoder, plan_rows


#: Plan name -> a loader of (plan function taking ``batch_size`` and keywords, its table rows).
PLANS: dict[str, Callable[[], tuple[Callable[..., dict], Callable[[dict], list]]]] = {
    "encoder": _encoder, "neuropictor": _neuropictor, "troi": _troi,
    "latent-mapper": _latent_mapper}  # the report's best mapper (GCN); plan_latent_mapper(mapper=...) for the others


def make_plan(name: str, batch_size: int | None = None, **kwargs: Any) -> tuple[dict[str, Any], list]:
    """Run the plan called ``name`` (one of :data:`PLANS`): the plan (JSON-ready) and its table rows.

    Raises
    ------
    InputError
        An unknown plan, or settings out of range.
    """
    check_option("plan", name, PLANS)
    plan_fn, rows = PLANS[name]()
    plan = plan_fn(**({} if batch_size is None else {"batch_size": batch_size}), **kwargs)
    return plan, rows(plan)
