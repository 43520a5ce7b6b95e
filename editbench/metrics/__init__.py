"""Shared metrics: pure functions over tensors and meter readings."""
