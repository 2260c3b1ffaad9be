"""Code run from this repository, never installed: the builders of the demo and test source models
(`make models`, the tests, the benchmark), the replicas of the model families, the generator of the
calibration sets that ship in export_models/data/, and the server-process launcher the tests and
the benchmark share."""
