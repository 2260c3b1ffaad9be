"""The test suite: tests/support holds what every folder shares; tests/conftest.py its fixtures."""
