"""fraudops: self-hosted MLOps for fraud-detection models."""

__version__ = "0.1.0"
