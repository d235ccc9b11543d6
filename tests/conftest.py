"""Shared fixtures for the jada-agent test suite."""
