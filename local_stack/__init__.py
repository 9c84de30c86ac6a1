"""The local stack: Azurite and the Batch emulator, started, probed, stopped and
provisioned like the Azure stack (``python -m local_stack up|down|status``).

``servers``: starting, probing and stopping each server (one port probe, one stop).
``stack``: the stack as a whole: its directory, pid files, provisioning and outputs.
"""
