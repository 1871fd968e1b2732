"""Reading and writing files: NIfTI, HDF5, the NSD tree, provenance sidecars."""
