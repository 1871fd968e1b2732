"""Datasets: the preprocessed-betas contract, ROIs, preprocessing and the simulated world."""
