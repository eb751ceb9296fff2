"""Use cases of the console: each owns its transaction; routes and the CLI call these."""
