"""The I/O layer: the aiohttp listener, the upstream client and the admin endpoint."""
