"""`make bench`: measures HF transformers, sentence-transformers, the server and the bare OpenVINO model.

See benchmark/run.py for the command, benchmark/config.py for the workloads and benchmark/systems.py
for the systems.
"""
