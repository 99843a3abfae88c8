"""The resource model: envelope, per-kind specs and strict decoding (API.md §1, §2)."""
