"""Figures: pycortex flatmaps and volume maps of per-voxel values, flat-mesh and inflated pictures of per-vertex
values."""
