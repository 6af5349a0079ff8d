"""The model and options a customer orders with: chosen on one screen of buttons, each showing
the price of the order with that choice, and remembered (``OrderSettings``) so that the next
order is a prompt and one tap.

Every press saves the choice and redraws the screen in place; "Done" goes back to the order:
a quote waiting in the chat is quoted again with the new settings (a new quote and button;
nothing starts without a press of it).
"""
from __future__ import annotations

from billing import selectors as billing_selectors
from jobs import selectors as job_selectors
from telegram_bot import callbacks, keyboards, offers, outbox, quotes, texts
from telegram_bot.handlers.base import HandlerBase, reply
from telegram_bot.messages import edit_sent_message
from telegram_bot.models import DialogueState
from telegram_bot.services import get_state, remember_settings, remembered_settings


class OrderSettingsHandlers(HandlerBase):
    def settings(self, message, data):
        self._choose_settings_group(message.chat.id)

    def _choose_settings_group(self, chat_id):
        reply(chat_id, texts.choose_settings_group(), keyboards.settings_groups())

    def _settings_screen(self, customer, group: str) -> tuple[str, dict]:
        with job_selectors.one_catalogue_read():  # a quote per button, one read of the offers
            return self._render_settings(customer, group)

    def _render_settings(self, customer, group: str) -> tuple[str, dict]:
        kind = offers.PRICED_KIND[group]
        model, options = offers.fit(kind, *remembered_settings(customer, group))
        choices = []
        for name, _attribute in offers.GROUP_OPTIONS[group]:
            taken = offers.values(offers.offer_for(kind, model), name)
            priced = [(value, offers.price(kind, *offers.fit(kind, model, {**options, name: value}))) for value in taken]
            if priced:
                choices.append((name, priced))
        models = [(offer, offers.price(kind, *offers.fit(kind, offer.key, options))) for offer in offers.offers_for(group)]
        text = texts.settings_screen(group, offers.title(kind, model), options)
        return text, keyboards.settings_screen(group, model, options, models, choices)

    def _open_settings(self, chat_id, customer, group: str):
        reply(chat_id, *self._settings_screen(customer, group))

    def _change_setting(self, query, customer, pressed):
        """A model or an option pressed: remember it (if the catalogue still has it), redraw the screen."""
        group = pressed.group
        kind = offers.PRICED_KIND[group]
        model, options = offers.fit(kind, *remembered_settings(customer, group))
        if isinstance(pressed, callbacks.ChooseModel):
            if offers.offer_for(kind, pressed.model).key != pressed.model:
                return self._expired(query)
            model, options = offers.fit(kind, pressed.model, options)
        else:
            value = offers.parse_value(offers.offer_for(kind, model), pressed.name, pressed.value)
            if value is None:
                return self._expired(query)
            options = {**options, pressed.name: value}
        self.bot.answer_callback_query(query.id)
        remember_settings(customer=customer, group=group, model=model, options=options)
        text, markup = self._settings_screen(customer, group)
        chat_id = query.message.chat.id
        outbox.enqueue(edit_sent_message(chat_id, query.message.message_id, text, reply_markup=markup))

    def _settings_done(self, query, customer, group: str):
        chat_id = query.message.chat.id
        quotes.remove_keyboard(chat_id, query.message.message_id)
        conversation = get_state(chat_id)
        draft = conversation.data
        if conversation.state == DialogueState.CONFIRM and draft.get("kind") in offers.GROUP_KINDS[group]:
            model, options = remembered_settings(customer, group)
            return quotes.show(chat_id, quotes.requote(draft, model=model, options=options),
                               billing_selectors.get_balance(customer))
        if conversation.state in (DialogueState.PICTURE_PROMPT, DialogueState.VIDEO_PROMPT, DialogueState.EDIT_PHOTO):
            return reply(chat_id, texts.settings_saved_send_prompt())
        reply(chat_id, texts.settings_saved(), keyboards.main_menu())
