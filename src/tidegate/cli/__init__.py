"""Command line interface: `tidegate <command>`; nothing else in the package imports it."""
