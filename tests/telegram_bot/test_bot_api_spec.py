"""The checker of sandbox answers against Telegram's published Bot API types, and the sandbox's
media answers checked with it (the chat e2e tests check every answer: test_chat_e2e.py)."""
import io

import requests
from PIL import Image

from tests.telegram_bot.bot_api_spec import load_spec

PHOTO = {"file_id": "F1", "file_unique_id": "U1", "width": 512, "height": 512, "file_size": 10}
MESSAGE = {
    "message_id": 1, "date": 0, "chat": {"id": 5, "type": "private", "first_name": "Ann"},
    "from": {"id": 7, "is_bot": True, "first_name": "bot"}, "photo": [PHOTO],
    "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]},
}


def test_the_spec_is_bot_api_10_1():
    assert load_spec().version == "Bot API 10.1"


def test_a_message_as_telegram_sends_it_passes():
    spec = load_spec()
    assert spec.check("Message", MESSAGE) == []
    assert spec.check_result("getUpdates", [{"update_id": 1, "message": MESSAGE}]) == []
    assert spec.check_result("answerCallbackQuery", True) == []


def test_unknown_and_missing_fields_and_wrong_types_are_found_however_deep():
    spec = load_spec()
    bad = {**MESSAGE, "photo": [{**PHOTO, "mime_type": "image/png"}], "chat": {"type": "private"}}
    assert sorted(spec.check("Message", bad)) == [
        "Message.chat.id: required in Chat, missing",
        "Message.photo[0].mime_type: no such field in PhotoSize",
    ]
    assert spec.check("Message", {**MESSAGE, "date": "today"}) == ["Message.date: Integer expected, got 'today'"]
    keyboard = {"inline_keyboard": [[{"text": "OK", "callback_data": "ok", "colour": "red"}]]}
    assert spec.check("InlineKeyboardMarkup", keyboard) == [
        "InlineKeyboardMarkup.inline_keyboard[0][0].colour: no such field in InlineKeyboardButton"
    ]
    assert spec.check_result("sendMessage", True)  # a Message, not True
    # A union (MaybeInaccessibleMessage): one of its members must fit.
    assert spec.check("MaybeInaccessibleMessage", {"chat": {"id": 1, "type": "private"}, "message_id": 1, "date": 0}) == []
    assert spec.check("MaybeInaccessibleMessage", {"message_id": 1})


def test_the_sandbox_answers_send_photo_video_and_document_with_the_types_telegram_defines(sandbox):
    spec = load_spec()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, "PNG")
    answers = {}
    for method, field, mime in (("sendPhoto", "photo", "image/png"), ("sendVideo", "video", "video/mp4"),
                                ("sendDocument", "document", "image/png")):
        response = requests.post(f"{sandbox.url}/bot1:x/{method}", data={"chat_id": 5},
                                 files={field: (f"a.{mime.split('/')[1]}", buffer.getvalue(), mime)}, timeout=10)
        answers[method] = response.json()["result"]
        assert spec.check_result(method, answers[method]) == [], method
    assert "mime_type" not in answers["sendPhoto"]["photo"][0]
    assert answers["sendVideo"]["video"]["mime_type"] == "video/mp4"
