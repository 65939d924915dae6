"""bidl: brain-inspired deep spiking networks for spatiotemporal data."""

__version__ = "0.1.0"
