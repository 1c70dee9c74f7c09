"""The governance dashboard: `fraudops dashboard`, a read-mostly web process over the lake and
the registry (pages in ``pages/``, their typed data in ``contracts``)."""
