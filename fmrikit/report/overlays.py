"""Pictures the report draws itself: each voxel selection over the subject's annotated ROI."""

from __future__ import annotations

from pathlib import Path

from fmrikit._logging import logger
from fmrikit.report.inventory import Inventory, Output


def annotated_roi(inv: Inventory, subject: str) -> Output | None:
    """The subject's dataset of the annotated ROI (the one preprocessed without ``--roi``), when it has a mask."""
    for item in inv.of("dataset", subject):
        if item.mask is not None and "_roi-" not in item.path.name:
            return item
    return None


def draw_selection_overlays(inv: Inventory, folder: Path) -> list[Path]:
    """Draw every voxel selection's mask over its subject's annotated-ROI mask into ``folder`` and add the picture
    to the selection's card. A picture that cannot be drawn (another grid, a missing file) is logged and skipped.

    Returns
    -------
    list of Path
        The pictures drawn.
    """
    import numpy as np

    from fmrikit.data.dataset import read_info
    from fmrikit.errors import FmrikitError
    from fmrikit.io.nifti import image_data, load_image
    from fmrikit.viz.maps import save_overlay

    drawn = []
    for item in inv.of("selection"):
        reference = annotated_roi(inv, item.subject)
        if item.mask is None or reference is None:
            continue
        roi = reference.sidecar.get("parameters", {}).get("roi") or "annotated ROI"
        try:
            a, b = load_image(item.mask, ndim=3), load_image(reference.mask, ndim=3)
            if a.shape != b.shape or not np.allclose(a.affine, b.affine):
                logger.info("%s: not drawn over %s (another grid)", item.mask.name, reference.mask.name)
                continue
            target = read_info(reference.path).map_target.check()
            png = folder / f"overlay{len(drawn):03d}_{item.mask.name.replace('.nii.gz', '.png')}"
            result = save_overlay(image_data(a, item.mask) > 0, image_data(b, reference.mask) > 0, target, png,
                                  mask_name="TROI", reference_name=roi,
                                  title=f"{item.subject}: TROI mask over the annotated ROI ({roi})")
        except FmrikitError as exc:
            logger.warning("%s: overlay not drawn (%s)", item.mask.name, exc.one_line())
            continue
        if "png" in result:
            item.images.insert(1, (png, f"TROI mask over the annotated ROI ({roi}; yellow: both)"))
            drawn.append(png)
    return drawn
