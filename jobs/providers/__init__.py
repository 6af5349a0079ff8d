"""AI providers: one interface (``base``), real clients (``gemini``, ``kling``), a local fake."""
