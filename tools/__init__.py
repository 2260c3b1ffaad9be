"""Builders run from this repository, never installed: the demo and test source models (`make
models`, the tests, the benchmark), the replicas of the model families, and the generator of the
calibration sets that ship in export_models/data/."""
