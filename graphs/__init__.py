"""The shipped workflow files (graphs/ in the repository)."""
