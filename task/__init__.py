"""The program every Batch node runs: ``task/topwords.py``, standard library only."""
