"""Tests of the model server (serving/): a real server process, real SDK clients."""
