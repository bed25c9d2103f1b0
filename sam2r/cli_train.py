"""The old path of `sam2r train`'s module, kept because `bench/plot_training.py` imports
`plot_curve` from it; the command lives in `sam2r.cli.train`."""

from sam2r.cli.train import plot_curve

__all__ = ["plot_curve"]
