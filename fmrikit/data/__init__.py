"""Datasets: the preprocessed-betas contract (voxels or fsaverage vertices), ROIs, preprocessing, mesh smoothing and
the simulated world."""
