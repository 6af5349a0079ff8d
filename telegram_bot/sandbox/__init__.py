"""The local Bot API sandbox: ``SandboxServer`` (see ``server.py``)."""
