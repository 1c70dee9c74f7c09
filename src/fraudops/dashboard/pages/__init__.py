"""The dashboard's pages: one module per page, each ``build(runtime, filters) -> PageData``."""
