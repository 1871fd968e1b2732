"""Figures: per-voxel maps (NIfTI + pycortex flatmap or nilearn mosaic), flatmaps, montages, flat-mesh and inflated
pictures of per-vertex values."""
