"""Outgoing mail over SMTP (SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD, MAIL_FROM, SMTP_STARTTLS)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flask import current_app

TIMEOUT = 10  # seconds: a stuck mail server must not hold a pledge request for long


def send_mail(to: str, subject: str, body: str) -> None:
    """Send a plain-text message; raises OSError or smtplib.SMTPException when it cannot."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=TIMEOUT) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
