"""An agent hands the call back to the bot to read back and confirm a sale they closed.

The agent who took an escalated call (the desk's "交回机器人确认办理") cannot record a consent
themselves: a consent enters the ledger only under the bot's rules (DESIGN.md, rule 4).  So
the gateway unbridges the agent and sends ``/agent_handback``; from here the call is the
bot's again and nothing of the agent's word counts:

- **The holder must be verified by the bot.**  A call escalated before the identity check
  was done goes back to the identity question (and the ID digits where the campaign asks
  for them) before any read-back; a bank confirms a sale with the account holder only, and
  the agent's own check leaves no evidence the ledger can bind.  A call whose verification
  *failed* (the escalation's reason) is refused: the bot says it cannot confirm the sale
  and ends the call.  The desk refuses the button for such calls already; this is the
  flow's own guard.
- **The approved script must have been said by the bot.**  If any mandatory disclosure was
  not played in full before the escalation, the whole pitch is said (uninterruptible)
  before the read-back, as when a disclosure was cut off.
- **Then the read-back and an explicit confirmation**, exactly as for the bot's own sale
  (actions/flowoffer.py: ``final_confirm``, ``keyed_confirm``): a keyed 1 or a clear "确认"
  records the consent, marked as closed by the agent (``RecordConsent.closed_by_agent``; the
  action layer names the agent in the ledger entry); a no is a decline; a weak yes or
  silence is no consent.

Only offer campaigns (marketing, second confirmation) can be handed back, and only a call
that the bot had handed over for a person (outcome ``escalated``): a complaint is not a
sale.
"""

from __future__ import annotations

from actions.flowcontrol import ControlRequests
from actions.flowtypes import Step

OFFER_CAMPAIGNS = frozenset({"marketing", "second_confirmation"})


class HandBack(ControlRequests):
    """The bot's side of an agent's hand-back."""

    def _handed_back(self) -> Step:
        state = self.state
        if not state.ended:  # the bot has the call already: its question again
            return self._prompt()
        if state.outcome != "escalated" or self.script.campaign_type not in OFFER_CAMPAIGNS:
            state.stage = "ended"  # the outcome stays what the hand-over made it
            return Step(lead="end_handback_refused")
        state.handed_back = True
        state.outcome = state.decision = state.pending_control = None
        state.resume_stage, state.pending_words = "", ""
        state.silences = state.control_asks = 0
        if not state.verified:
            return self._goto("identity", Step(lead="handback"))
        return self._read_back_agents_sale(opening=True)

    def _read_back_agents_sale(self, *, opening: bool = False) -> Step:
        """The read-back of the sale the agent closed, after the approved pitch if the bot
        has not said all of it; *opening*: the bot first says it takes the call back."""
        if self.script.required_disclosures - set(self.state.sent):
            step = self._pitch()
            if opening:
                step.lead = f"handback_{step.lead}"
        else:
            step = Step(lead="handback" if opening else "nothing")
        return self._goto("final_confirm", step)
