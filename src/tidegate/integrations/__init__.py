"""Adapters to the outside world: registries (SIEM outputs and identity providers come next).

Integrations import `tidegate.core` and `tidegate.image` only; services choose and drive them.
"""
