"""The dashboard's routes: page shells and sign-in (``views``), data (``api``), actions."""
