"""Accelerate configs shipped with the recipes (data only)."""
