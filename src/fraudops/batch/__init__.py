"""Batch scoring of a file with a registered model (`fraudops score`)."""
