"""Closed vocabularies stored in the database.

The same tuples feed the CHECK constraints of the models (and so the migrations) and the
validation in the repositories, so a value the database would refuse is refused earlier with
a readable ``ValueError``.  Adding a value means a new migration.
"""

from __future__ import annotations

CAMPAIGN_TYPES = ("notification", "survey", "marketing", "second_confirmation")
CAMPAIGN_STATUSES = ("draft", "running", "paused", "finished")
CONTACT_STATUSES = ("pending", "in_progress", "done", "dnc", "failed")
DIAL_RESULTS = (
    "answered",
    "busy",
    "no_answer",
    "rejected",
    "invalid_number",
    "suspended",
    "powered_off",
    "failed",
)
OUTCOMES = (
    "consented",
    "declined",
    "notified",
    "survey_completed",
    "survey_partial",
    "wrong_person",
    "verification_failed",
    "callback_requested",
    "escalated",
    "complaint",
    "do_not_call",
    "hung_up_early",
    "no_response",
    # A system failure (Rasa, the action server or the database down, a bug): not the
    # customer's doing; the contact is retried per the campaign's policy for ``failed``.
    "failed",
)
DECLINE_REASONS = ("distrust", "too_expensive", "not_needed", "other")
CONFIRMATION_RESULTS = ("keep", "cancel", "undecided")
SPEAKERS = ("bot", "customer", "system", "agent")
INPUT_MODES = ("speech", "dtmf", "text")
DNC_KINDS = ("do_not_call", "blacklist")
DNC_SOURCES = ("customer", "complaint", "import", "operator")
CALLBACK_KINDS = ("customer_request", "second_confirmation", "trial_extension", "qa_followup")
CALLBACK_STATUSES = ("pending", "done", "cancelled")
# Why an attempt was dialled: the contact's first dial, a retry, a customer-requested callback,
# or a follow-up (bot/campaigns/followups.py, bot/campaigns/qa.py).
ATTEMPT_KINDS = ("first", "retry", "callback", "second_confirmation", "trial_extension",
                 "qa_followup")
# ``pending`` and ``connected`` are the blind transfer's (the gateway dials one agent URI);
# the others are the agent desk's (DESIGN.md, "Escalation statuses"), from migration 0011.
ESCALATION_STATUSES = ("pending", "connected", "failed", "waiting", "offered", "listening",
                       "bridged", "declined", "timed_out", "abandoned", "callback",
                       "returned_to_bot")
# The human side (DESIGN.md): an agent's presence, why they are away, the answer to an offer
# of an escalated call, and the disposition an agent records after the call.
AGENT_STATES = ("offline", "available", "offered", "on_call", "wrap_up", "away")
# ``missed_offer`` is set by the desk, not chosen: an offer left unanswered puts the agent
# away, so that the next call does not ring an empty desk.
AWAY_REASONS = ("break", "meal", "meeting", "training", "other", "missed_offer")
PRESENCE_EVENTS = ("log_in", "log_out", "offer", "accept", "decline", "offer_timed_out",
                   "offer_withdrawn", "call_ended", "wrap_up_done", "wrap_up_expired",
                   "go_away", "come_back")
# ``withdrawn``: the escalation ended while the offer rang (the customer hung up, the wait
# limit passed).
OFFER_OUTCOMES = ("accepted", "declined", "timed_out", "withdrawn")
DISTRIBUTION_STRATEGIES = ("equal_share", "equal_results", "weight")
DISPOSITIONS = ("resolved", "sale", "callback", "complaint", "wrong_person", "other")
SURVEY_SCORE_MIN, SURVEY_SCORE_MAX = 1, 5
# Console users (DESIGN.md, the human side): what each may open is bot/console/access.py.
USER_ROLES = ("admin", "supervisor", "qa", "agent")


def require(
    value: str | None, allowed: tuple[str, ...], what: str, *, nullable: bool = False
) -> None:
    """Raise ``ValueError`` unless *value* is one of *allowed* (or None when *nullable*)."""
    if value is None and nullable:
        return
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
