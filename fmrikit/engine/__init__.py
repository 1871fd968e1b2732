"""The training machinery every method shares: model folders, the supervised loop, DDP, checkpoints, run
scaffolding and ridge regression."""
