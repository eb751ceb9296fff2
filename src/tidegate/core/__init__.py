"""Pure domain: models, version comparators, matching, evaluation. No I/O, no framework."""
