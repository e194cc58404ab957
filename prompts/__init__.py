"""The shipped prompt templates (prompts/ in the repository)."""
