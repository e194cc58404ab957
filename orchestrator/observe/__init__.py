"""Seeing what a run did: its timeline (`orchestrator show`) and the CLI's log output."""
