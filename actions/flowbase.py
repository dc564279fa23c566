"""What every stage of the call flow shares: the limits of the call rules, the question
of each stage, moving between stages, and the disclosures sent.

``FlowBase`` holds one call's script and state.  The stage handlers build on it:
actions/flowoffer.py (the offer, the read-back and the consent), then actions/flow.py
(identity, permission, notice, survey, and requests at any stage).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from actions.flowtypes import Effect, FlowState, Outcome, Reply, ScheduleCallback, Script, Step
from actions.wording import DISCLOSURES, LEADS, SCALE_HINTS
from bot.timeparse import say_time

MAX_REPEATS = 2  # "没听清" → repeat at most twice, then end without a sale
MAX_SILENCES = 1  # /silence_timeout → reprompt once, then end
MAX_ID_TRIES = 2
MAX_WEAK_AGREEMENTS = 2  # "嗯"/"好" where an explicit "我同意" is needed
MAX_OBJECTIONS = 1  # answer an objection once; the second time it is the decline reason
# A spoken answer heard below GUESS_CONFIDENCE, or snapped to a hint at WEAK_SNAP_CONFIDENCE
# or below, is a guess.  Refusals said plainly came through at 0.38-0.50 on the paraphrase
# run (先贵吧, 不要); 确认了 came back as 取消 at 0.11, and an espeak-ng 转人工 as 不方便
# at 0.29 (snapped) at the permission question.
GUESS_CONFIDENCE = 0.3
WEAK_SNAP_CONFIDENCE = 0.5
MAX_CONTROL_ASKS = 2  # "您是说以后不要再打了吗？" at most twice, then the request stands
# A customer who asked to be called back and gave no usable time: the no-answer spacing.
DEFAULT_CALLBACK_DELAY = timedelta(hours=2)

REASON_BY_INTENT = {"too_expensive": "too_expensive", "distrust": "distrust",
                    "not_needed": "not_needed"}
_PERMISSION_QUESTION = {"marketing": "permission_marketing", "survey": "permission_survey",
                        "second_confirmation": "permission_confirm"}


class FlowBase:
    """One call's script and state, and the moves that every stage makes."""

    def __init__(self, script: Script, state: FlowState, *,
                 check_id: Callable[[str], bool] | None = None,
                 now: datetime | None = None) -> None:
        self.script = script
        self.state = state
        self._check_id = check_id or (lambda _digits: False)
        self._now = now or datetime.now().astimezone()

    # -- asking the question of the current stage ----------------------------------------

    def _prompt(self, step: Step | None = None) -> Step:
        """Set ``step``'s question to the one of the current stage."""
        step = step or Step()
        stage = self.state.stage
        if stage == "identity":
            step.question = "identity"
        elif stage == "family_authority":
            step.question = "family_authority"
        elif stage == "verify_id":
            step.question = "id_last4"
        elif stage == "permission":
            step.question = _PERMISSION_QUESTION[self.script.campaign_type]
        elif stage == "notice":
            step.question = "notice_heard"
            if step.lead == "nothing":
                step.lead = "notice"
            elif step.lead == "sorry":
                step.lead = "sorry_notice"
        elif stage == "survey_q":
            question = self.script.survey[self.state.survey_index]
            step.slots.update(survey_question=question.text,
                              survey_scale_hint=SCALE_HINTS[question.scale])
            step.question = "survey_question"
        elif stage == "survey_open":
            step.slots["survey_open_question"] = self.script.open_question
            step.question = "survey_open"
        elif stage == "final_confirm":
            step.question = ("readback_keep" if self.script.campaign_type == "second_confirmation"
                             else "readback")
        elif stage == "keep_offer":
            step.question = "keep"
        elif stage == "offer":
            step.question = "consent"
        elif stage == "confirm_control":
            step.question = {"do_not_call": "confirm_dnc", "complain": "confirm_complaint",
                             "request_human": "confirm_human"}[
                                 self.state.pending_control or "do_not_call"]
        elif stage in ("survey_reason", "keyed_confirm", "decline_reason", "callback_time"):
            step.question = {"survey_reason": "survey_reason", "keyed_confirm": "keyed_confirm",
                             "decline_reason": "decline_reason",
                             "callback_time": "callback_time"}[stage]
        else:
            raise ValueError(f"no question for stage {stage!r}")
        return step

    def _goto(self, stage: str, step: Step | None = None) -> Step:
        self.state.stage = stage
        self.state.repeats = 0
        self.state.weak = 0
        return self._prompt(step)

    def _end(self, lead: str, outcome: Outcome, *effects: Effect, **slots: Any) -> Step:
        self.state.stage = "ended"
        self.state.outcome = outcome.outcome
        return Step(lead=lead, effects=[*effects, outcome], slots=slots)

    # -- hearing, repeating, ending early -----------------------------------------------

    def _heard_clearly(self, reply: Reply) -> bool:
        """Typed or keyed, or spoken and heard as the consent rule requires: unsnapped, with
        acoustic confidence of at least `min_asr_confidence`."""
        if reply.input_mode != "speech":
            return True
        return (reply.asr_confidence is not None and not reply.asr_snapped
                and reply.asr_confidence >= self.script.min_asr_confidence)

    def _barely_heard(self, reply: Reply) -> bool:
        """Spoken and heard below GUESS_CONFIDENCE: too little to end a call on."""
        return reply.input_mode == "speech" and (reply.asr_confidence or 0.0) < GUESS_CONFIDENCE

    def _a_weak_guess(self, reply: Reply) -> bool:
        """Barely heard, or snapped to a hint at WEAK_SNAP_CONFIDENCE or below: too little
        to cancel a customer's service on."""
        return self._barely_heard(reply) or (
            reply.input_mode == "speech" and reply.asr_snapped
            and (reply.asr_confidence or 0.0) <= WEAK_SNAP_CONFIDENCE)

    def _repeat(self) -> Step:
        self.state.repeats += 1
        if self.state.repeats > MAX_REPEATS:
            return self._end_unfinished("end_not_understood", silent=True)
        if self.state.stage in ("offer", "keep_offer"):
            return self._prompt(self._pitch(sorry=True))
        return self._prompt(Step(lead="sorry"))

    def _silence(self) -> Step:
        self.state.silences += 1
        if self.state.silences <= MAX_SILENCES:
            return self._prompt(Step(lead="still_there"))
        return self._end_unfinished("end_silence", silent=True)

    # -- decisions taken before the call ends ----------------------------------------------

    def _decide(self, outcome: str, reason: str | None = None, said: str = "") -> Outcome:
        """The customer has decided (a refusal, "call me later") and the bot asks one more
        thing: the decision is the call's outcome from now on, recorded at once (a call cut
        off by a fault keeps it) and whatever the next turn brings."""
        self.state.decision = {"outcome": outcome, "reason": reason, "said": said}
        return Outcome(outcome, reason)

    def _end_unfinished(self, lead: str, *, silent: bool) -> Step:
        """End a call before its script did (silence, not understood, goodbye, hang-up),
        with the decision already taken if there is one."""
        decision = self.state.decision
        if decision is not None and decision["outcome"] == "callback_requested":
            return self._schedule_callback(self._now + DEFAULT_CALLBACK_DELAY,
                                           decision["said"])
        return self._end(lead, self._unfinished_outcome(silent=silent))

    def _schedule_callback(self, due: datetime, said: str) -> Step:
        return self._end("end_callback", Outcome("callback_requested"),
                         ScheduleCallback(due, said),
                         callback_time_text=say_time(due, self._now))

    def _unfinished_outcome(self, *, silent: bool) -> Outcome:
        """The outcome of a call that ends before its script did."""
        if self.state.decision is not None:
            return Outcome(self.state.decision["outcome"], self.state.decision["reason"])
        if self.state.answered:
            return Outcome("survey_partial")
        if self.state.stage == "notice" and not silent:
            return Outcome("notified")  # heard the notice and said goodbye
        if self.state.pitched and not silent:
            return Outcome("declined", "other")
        return Outcome("no_response" if silent else "hung_up_early")

    # -- disclosures --------------------------------------------------------------------

    def _pitch(self, *, sorry: bool = False) -> Step:
        """The approved script with every mandatory disclosure (rule 3)."""
        if self.script.campaign_type == "second_confirmation":
            lead = "pitch_keep"
        else:
            lead = "pitch" if self.script.has_trial else "pitch_no_trial"
        return self._disclosed(("sorry_" if sorry else "") + lead)

    def _disclosed(self, lead: str, step: Step | None = None) -> Step:
        """A step whose lead says disclosures; they count as sent unless the channel
        reports them interrupted on the next turn (sent is not yet heard in full)."""
        step = step or Step()
        step.lead = lead
        for response in LEADS[lead]:
            self.state.sent.extend(d for d in DISCLOSURES.get(response, ())
                                   if d not in self.state.sent)
        if lead.removeprefix("sorry_").startswith("pitch"):
            self.state.pitched = True
        return step

    def _forget_interrupted(self, interrupted: tuple[str, ...]) -> None:
        if interrupted:
            self.state.sent = [d for d in self.state.sent if d not in interrupted]
