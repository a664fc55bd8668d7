"""One person, one email: the canonical form two spellings of the same mailbox share."""

from __future__ import annotations

import unicodedata

# Gmail ignores dots in the local part, and googlemail.com is the same mailbox.
GMAIL_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def canonical_email(address: str) -> str:
    """NFKC, case-folded and trimmed; a "+tag" dropped for every domain; dots dropped for Gmail.

    `Jane.Doe+nno@GoogleMail.com` and `janedoe@gmail.com` are one person. The address as typed
    is still what mail goes to: this is only what the same-person check compares.
    """
    text = unicodedata.normalize("NFKC", address).casefold().strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return text
    local = local.split("+", 1)[0] or local
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), GMAIL_DOMAINS[domain]
    return f"{local}@{domain}"
