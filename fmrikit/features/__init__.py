"""Image feature extractors."""
