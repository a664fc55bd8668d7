"""The pledge form: what was typed, kept for redisplay, and turned into the API's pledge fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import request
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from ..errors import CampaignClosed, InvalidInput, NotFound, field_messages
from ..schemas import PledgeIn
from ..services.keys import CallerKey
from ..services.pledging import PledgeReceipt, record_pledge

# Humans never see this field (display: none); a bot that fills it is thanked and not counted.
HONEYPOT = "website"
FIELDS = ("kind", "neighborhood", "name", "email")


@dataclass
class PledgeForm:
    kind: str = ""
    neighborhood: str = ""
    name: str = ""
    email: str = ""
    show_name: bool = False
    campaign: str = ""
    trapped: bool = False
    errors: dict[str, list[Any]] = field(default_factory=dict)
    problem: Any = None  # an error that is not about one field (the campaign closed, say)

    @classmethod
    def from_post(cls, form: MultiDict[str, str]) -> PledgeForm:
        return cls(
            **{name: form.get(name, "")[:1000] for name in FIELDS},
            show_name=form.get("show_name") in ("on", "true", "1"),
            campaign=form.get("campaign", "current")[:80] or "current",
            trapped=bool(form.get(HONEYPOT, "").strip()),
        )

    def as_pledge(self) -> dict[str, Any]:
        """The fields as the API takes them; empty choices are left out so they read as missing."""
        pledge: dict[str, Any] = {name: getattr(self, name) for name in FIELDS if getattr(self, name)}
        pledge.setdefault("email", "")
        pledge["show_name"] = self.show_name
        return pledge

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.problem)


def record_form_pledge(form: PledgeForm, intake_key: CallerKey | None = None) -> PledgeReceipt | None:
    """The form's pledge, checked and recorded exactly as the API's; None, with the form's errors set,
    when it cannot be (the front page and the sign-up table answer it with the form again)."""
    try:
        pledge = PledgeIn().load(form.as_pledge())
        return record_pledge(form.campaign, pledge, client_address=request.remote_addr, intake_key=intake_key)
    except ValidationError as error:
        form.errors = field_messages(error.normalized_messages())
    except InvalidInput as error:
        form.errors = field_messages(error.fields or {})
        form.problem = None if error.fields else error.message
    except (CampaignClosed, NotFound) as error:
        form.problem = error.message
    return None
