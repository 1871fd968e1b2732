"""Trainable models saved as folders (config.json + model.safetensors)."""
