"""Hydra configs, one top-level config per command (installed as package data)."""
