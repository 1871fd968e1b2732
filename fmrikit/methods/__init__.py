"""One folder per method: each paper's models, training and inference.

- :mod:`~fmrikit.methods.mindeye`: the MindEye2-style decoder (cross-subject pretraining, new-subject
  adaptation, the diffusion prior and the unCLIP reconstruction route);
- :mod:`~fmrikit.methods.troi`: TROI's data-driven voxel selection on that decoder;
- :mod:`~fmrikit.methods.encoder`: the voxel-centric universal image-to-fMRI encoder, its ridge baseline,
  predictions and functional clusters;
- :mod:`~fmrikit.methods.latent`: Takagi & Nishimoto's latent mappers and the embedded autoencoder;
- :mod:`~fmrikit.methods.neuropictor`: NeuroPictor's flatmap autoencoder, conditioner and ControlNet.
"""
