"""Scorer tests use the shared `loopback` and `wire` fixtures of tests/conftest.py."""
