"""bridgekit: a framework for Matrix application-service bridges."""

__version__ = "0.1.0"
