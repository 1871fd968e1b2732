"""Figures: pycortex flatmaps and volume maps of per-voxel values."""
