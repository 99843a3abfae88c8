"""Watch (API.md §15): the change log read in commit-safe order, fanned out to streams."""
