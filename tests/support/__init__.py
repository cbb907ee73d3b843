"""Helpers shared by every test layer: ports, waiting, and sigwatch in-process or as a process."""
