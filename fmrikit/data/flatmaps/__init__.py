"""NeuroPictor-style flatmap images of each trial's betas: a 2D space every subject shares.

- :mod:`~fmrikit.data.flatmaps.operator`: the sparse (pixels x voxels) projection of a dataset's voxels onto
  its pycortex flatmap, cropped and resized (:func:`flatmap_mapping`);
- :mod:`~fmrikit.data.flatmaps.fsaverage`: the same for a surface dataset: fsaverage's flat mesh rasterised on
  a fixed visual crop that every subject shares (what :func:`flatmap_mapping` builds for it);
- :mod:`~fmrikit.data.flatmaps.cache`: every trial's flatmap, cached once per dataset and size
  (:func:`flatmap_dataset`), and its readers;
- :mod:`~fmrikit.data.flatmaps.store`: training rows streamed across subjects (:class:`FlatmapStore`).
"""

from fmrikit.data.flatmaps.cache import (FlatmapInfo, flatmap_dataset, read_flatmap_info, read_flatmaps, split_rows,
                                         test_flatmaps)
from fmrikit.data.flatmaps.operator import FlatmapMapping, flatmap_mapping, read_mapping, write_mapping
from fmrikit.data.flatmaps.store import FlatmapStore

__all__ = ["FlatmapInfo", "FlatmapMapping", "FlatmapStore", "flatmap_dataset", "flatmap_mapping", "read_flatmap_info",
           "read_flatmaps", "read_mapping", "split_rows", "test_flatmaps", "write_mapping"]
