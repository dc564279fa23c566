"""The offer stages of the call flow: the pitch, objections, the read-back and the consent
(marketing and second-confirmation campaigns).

Rule 4 lives here: a consent is recorded only from the confirmation after the read-back,
keyed or explicitly agreed and heard clearly, once every mandatory disclosure was sent.
"""

from __future__ import annotations

from actions.flowbase import (
    MAX_OBJECTIONS,
    MAX_WEAK_AGREEMENTS,
    REASON_BY_INTENT,
    FlowBase,
)
from actions.flowtypes import Outcome, RecordConsent, Reply, Step


class OfferStages(FlowBase):
    """The stages from the pitch to the consent or the decline."""

    def _start_pitch(self) -> Step:
        stage = "keep_offer" if self.script.campaign_type == "second_confirmation" else "offer"
        self.state.stage = stage
        self.state.repeats = 0
        return self._prompt(self._pitch())

    def _on_offer(self, reply: Reply) -> Step:
        if reply.intent == "agree" or reply.keyed == "1":
            return self._goto("final_confirm")
        if reply.intent == "affirm":
            return self._weak_agreement()
        return self._objection_or_decline(reply)

    def _on_keep_offer(self, reply: Reply) -> Step:
        if reply.intent == "agree" or reply.keyed == "1":
            return self._goto("final_confirm")
        if reply.intent == "affirm":
            return self._weak_agreement()
        if reply.intent == "undecided":
            return self._undecided()
        refusals = ("deny", "not_needed", "too_expensive", "distrust")
        if reply.intent in refusals and self._a_weak_guess(reply):
            # 确认了 snapped to 取消 at confidence 0.11 ended a trial the customer wanted
            # to keep: cancelling their service rests on more than that.
            return self._repeat()
        if reply.intent in refusals or reply.keyed == "2":
            return self._end("end_trial_cancelled",
                             Outcome("declined", REASON_BY_INTENT.get(reply.intent, "other"),
                                     confirmation_result="cancel"))
        if reply.intent == "ask_cancel":
            return self._prompt(self._disclosed("disclose_cancel"))
        if reply.intent == "ask_price":
            return self._prompt(self._disclosed("trial_reminder"))
        return self._repeat()

    def _on_final_confirm(self, reply: Reply) -> Step:
        if reply.intent == "agree" or reply.keyed == "1":
            if not self._consent_is_clear(reply):
                return self._goto("keyed_confirm")
            return self._consent(reply)
        if reply.intent == "affirm":
            return self._weak_agreement()
        if self.script.campaign_type == "second_confirmation":
            return self._on_keep_offer(reply)
        return self._objection_or_decline(reply)

    def _on_keyed_confirm(self, reply: Reply) -> Step:
        if (reply.keyed == "1" or reply.intent == "agree") and self._consent_is_clear(reply):
            return self._consent(reply)
        if reply.keyed == "2" or reply.intent in ("deny", "not_needed"):
            return self._decline(reply.intent)
        return self._repeat()

    def _consent_is_clear(self, reply: Reply) -> bool:
        """Rule 4: only a keyed 1 or an explicit agreement heard with good confidence, and
        given to the question: not begun before the bot had asked it (said while the
        dialogue was thinking, or to the agent before a hand-back)."""
        if reply.before_question:
            return False
        if reply.input_mode == "dtmf" or reply.intent == "dtmf":
            return reply.keyed == "1"
        if reply.intent != "agree" or reply.intent_confidence < self.script.min_intent_confidence:
            return False
        return self._heard_clearly(reply)

    def _consent(self, reply: Reply) -> Step:
        if self.script.required_disclosures - set(self.state.sent):
            # A disclosure was cut off: the whole script again before a consent can count.
            self.state.stage = "final_confirm"
            return self._prompt(self._pitch())
        consent = RecordConsent(
            utterance=f"DTMF {reply.keyed}" if reply.keyed else reply.text,
            input_mode="dtmf" if reply.keyed else reply.input_mode,
            asr_confidence=None if reply.keyed else reply.asr_confidence,
            disclosures=tuple(sorted(self.state.sent)),
            closed_by_agent=self.state.handed_back,
        )
        if self.script.campaign_type == "second_confirmation":
            return self._end("end_keep", Outcome("consented", confirmation_result="keep"),
                             consent)
        return self._end("end_consent", Outcome("consented"), consent)

    def _weak_agreement(self) -> Step:
        self.state.weak += 1
        if self.state.weak > MAX_WEAK_AGREEMENTS:
            if self.script.campaign_type == "second_confirmation":
                return self._undecided()
            return self._end("end_decline", Outcome("declined", "other"))
        return Step(question="explicit")

    def _unheard_answer(self) -> Step:
        """The customer answered the offer and the bot could not make it out (a lone 嗯 on
        the telephone is often too short and soft for the recogniser; a hummed 哦哦 comes
        out as words that fit no intent).  Whatever it was, it
        was no explicit agreement: ask for one, the way a weak yes is answered, and count it
        with them, so that a call of mumbles ends as a decline instead of replaying the
        script every turn."""
        step = self._weak_agreement()
        if step.question == "explicit":
            step.lead = "sorry"
        return step

    def _undecided(self) -> Step:
        return self._end("end_undecided", Outcome("notified", confirmation_result="undecided"))

    def _objection_or_decline(self, reply: Reply) -> Step:
        intent = reply.intent
        if intent == "ask_price":
            return self._prompt(self._disclosed("disclose_price"))
        if intent == "ask_cancel":
            return self._prompt(self._disclosed("disclose_cancel"))
        if intent == "too_expensive":
            return self._objection("too_expensive", "objection_price")
        if intent == "distrust":
            return self._objection("distrust", "objection_distrust")
        if intent == "not_needed":
            return self._decline("not_needed")
        if intent == "undecided":
            return self._decline("other")
        if intent == "deny" or reply.keyed == "2":
            # A no is a no: asking why cannot undo it (silence, a hang-up or a goodbye
            # after "方便说一下原因吗" still ends as this decline).
            outcome = self._decide("declined", self._objection_heard())
            self.state.stage = "decline_reason"
            return self._prompt(Step(effects=[outcome]))
        return self._repeat()

    def _objection_heard(self) -> str:
        """The reason a bare no rests on: the latest objection the customer raised."""
        raised = [kind for kind in self.state.objections if kind in REASON_BY_INTENT]
        return raised[-1] if raised else "other"

    def _objection(self, kind: str, lead: str) -> Step:
        count = self.state.objections.get(kind, 0) + 1
        self.state.objections[kind] = count
        if count > MAX_OBJECTIONS:
            return self._decline(kind)
        return self._prompt(Step(lead=lead))

    def _decline(self, reason: str) -> Step:
        reason = reason if reason in ("distrust", "too_expensive", "not_needed") else "other"
        return self._end("end_decline", Outcome("declined", reason))

    def _on_decline_reason(self, reply: Reply) -> Step:
        return self._decline(REASON_BY_INTENT.get(reply.intent) or self._objection_heard())
