"""Local stand-ins for the outside services genbot talks to, so everything runs offline.

- ``telegram``: a Bot API server with a browser chat page (``manage.py run_sandbox``);
- ``yookassa``: YooKassa's API v3 with a fake checkout page (``manage.py yookassa_stub``);
- ``gemini``, ``kling`` (imported through ``providers``): Gemini's and Kling's APIs (tests start
  them in a thread; ``manage.py provider_stubs`` runs both);
- ``s3``: an S3-compatible object store (tests).

The product never imports this package: it only knows the URLs in its settings
(``TELEGRAM_API_URL``, ``YOOKASSA_API_URL``, ``GEMINI_API_URL``, ...), so a stand-in and the
real service are interchangeable. ``STANDINS`` (on by default, off in production) installs the
app, and with it its commands.
"""
