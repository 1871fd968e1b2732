"""Training loops: cross-subject pretraining, TROI voxel selection, subject adaptation."""
