"""Evaluation metrics, reports and clustering."""
