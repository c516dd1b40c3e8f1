"""Datasets and training scripts for the encoder heads (needs the ``[train]`` extra)."""
