"""The shipped evaluation sets (datasets/ in the repository)."""
