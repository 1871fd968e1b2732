"""Reading and writing files: NIfTI, HDF5, MGH and GIFTI, the NSD tree, the Algonauts layout, fsaverage meshes,
provenance sidecars."""
