"""Loopback emulators of the chat platforms' servers, for tests and benchmarks."""
