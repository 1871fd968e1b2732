"""Figures: per-voxel maps (NIfTI + pycortex flatmap or nilearn mosaic), flatmaps, montages."""
