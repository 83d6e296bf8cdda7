"""Scheduling: loop-nest transformations and kernel templates (GETT)."""
