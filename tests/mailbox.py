"""A real SMTP server on loopback (aiosmtpd) that keeps every message it is given."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import Message


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"

    def link(self, number: int = -1) -> str:
        body = self.messages[number].get_payload(decode=True).decode()
        return re.search(r"https?://\S+/confirm/\S+", body).group(0)
