"""A local Bot API server: the part of Telegram's Bot API genbot uses, plus a browser chat page.

The real bot (telebot, the sender) talks to it exactly as to api.telegram.org, through
``TELEGRAM_API_URL``. It keeps every chat in memory, hands the person's messages, button presses
and payments to the bot as updates (long-polling ``getUpdates`` or pushed to a webhook), and
enforces Telegram's flood limits with real 429 answers (its own sliding windows, not the
sender's token buckets, so the sender's pacing is checked from outside). Start it on port 0 in
a thread (``SandboxServer(port=0).start()``) or with ``manage.py run_sandbox --port 8081``.

``state``: the chats, updates, flood windows and every Bot API method; ``server``: the HTTP
server, its request handler, the chat page and the webhook pusher.
"""
from .server import SandboxServer, parse_body, render_chat_page
from .state import BOT_USER, ApiError, SandboxState

__all__ = ["BOT_USER", "ApiError", "SandboxServer", "SandboxState", "parse_body", "render_chat_page"]
