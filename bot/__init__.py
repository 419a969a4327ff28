"""Genjin runtime: HTTP app, CLI, configuration, channels and the message pipeline."""
