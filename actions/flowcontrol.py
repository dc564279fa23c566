"""The requests the call flow honours at any stage: a person, a complaint, do-not-call.

They end the bot's part of the call (a transfer) or the relationship (the number barred),
so the flow acts on one at once only when it is sure of it: said in so many words (the
request's own words, `CONTROL_WORDS`), or classified with the campaign's
``min_control_confidence``, heard clearly, and not contradicted by the rest of the
utterance (an ordinary "可以你说" heard as "可以跟你说" was classified `request_human` at
0.35 and the call was transferred).  Anything less is confirmed back first ("您是要转接人工
客服吗？").  While confirming, a clear no goes back to the question the customer was
answering, and so does a clear answer to the call itself ("明天上午十点再打过来": the
request was a mishearing), which is then taken there; for a do-not-call request
or a complaint, silence or a second unclear answer lets the request stand (when
in doubt, the number is not called again), while a doubtful request for a person
is dropped (the customer can always ask again; a transfer nobody wanted costs an
agent and the customer's patience).
"""

from __future__ import annotations

from actions.flowbase import MAX_CONTROL_ASKS
from actions.flowoffer import OfferStages
from actions.flowtypes import AddDoNotCall, Escalate, Outcome, Reply, Step
from actions.wording import ANSWER_OPENING, CONTROL_WORDS, SAYS_NO, SAYS_NO_NEED

# Requests the bot must honour wherever they come and whatever the classifier made of the
# rest of the words: a noisy transcript ("你们田间4打我要投诉") was taken for busy_call_later,
# and a lost complaint or do-not-call request is a compliance failure.  First match wins;
# the classifier's own control intent is never overridden ("再打我就投诉" is do_not_call).
CONTROL_INTENTS = frozenset({"request_human", "complain", "do_not_call"})
# Replies to "您是要投诉吗？" that are no answer of their own: the question stays open.
_NO_ANSWER_TO_A_CONFIRMATION = frozenset({
    "silence_timeout", "asr_unclear", "nlu_fallback", "not_understand", "affirm", "agree",
    "deny", "caller_hung_up", "ask_who", "goodbye", "dtmf", *CONTROL_INTENTS})


def control_by_words(text: str) -> str | None:
    return next((intent for intent, words in CONTROL_WORDS if words.search(text)), None)


def _says_it(intent: str, text: str) -> bool:
    """The utterance holds the request's own words."""
    return any(name == intent and words.search(text) for name, words in CONTROL_WORDS)


class ControlRequests(OfferStages):
    """Escalation, do-not-call and the confirmation of a request heard in doubt."""

    def _control_request(self, reply: Reply) -> str | None:
        """The control request this reply makes, if any: the classifier's, or the one its
        words make whatever the classifier said (keys never make one)."""
        if reply.intent in CONTROL_INTENTS:
            return reply.intent
        if reply.input_mode == "dtmf":
            return None
        return control_by_words(reply.text)

    def _in_doubt(self, intent: str, reply: Reply) -> bool:
        """Whether a control request must be confirmed back before the bot acts on it."""
        if not self._heard_clearly(reply):
            return True  # a guess the ASR snapped to a hint, or low acoustic confidence
        if _says_it(intent, reply.text):
            return False
        return (reply.intent_confidence < self.script.min_control_confidence
                or bool(ANSWER_OPENING.match(reply.text)))

    def _act_on_control(self, intent: str, reply: Reply) -> Step:
        if self._in_doubt(intent, reply):
            return self._confirm_control(intent, reply.text)
        if intent == "do_not_call":
            return self._do_not_call(reply.text)
        return self._escalate(intent)

    def _escalate(self, intent: str) -> Step:
        if intent == "complain":
            # A complaint puts the number on the blacklist at once (DESIGN.md, "Blacklist").
            step = self._end("end_complaint", Outcome("complaint"),
                             AddDoNotCall("blacklist", "complaint", "客户在通话中投诉"),
                             Escalate("complaint"))
        else:
            step = self._end("end_transfer", Outcome("escalated"), Escalate("request_human"))
        return step  # action_ask pauses the conversation once the transfer is announced

    def _do_not_call(self, words: str) -> Step:
        return self._end("end_dnc", Outcome("do_not_call"),
                         AddDoNotCall("do_not_call", "customer", words or "客户要求不再拨打"))

    def _confirm_control(self, intent: str, words: str) -> Step:
        self.state.pending_control, self.state.pending_words = intent, words
        self.state.resume_stage, self.state.control_asks = self.state.stage, 1
        self.state.stage = "confirm_control"
        return self._prompt()

    def _caller_gone(self) -> Step:
        """The caller hung up (after their last words, if any).  A do-not-call request or
        complaint being confirmed back stands, as on silence; a decision taken stands; the
        rest is left to the channel's hang-up, which decides `hung_up_early` or
        `survey_partial`."""
        if self.state.stage == "confirm_control":
            if self.state.pending_control != "request_human":
                return self._on_confirm_control(Reply("silence_timeout"))
            self._resume()
        if self.state.decision is not None:
            return self._end_unfinished("end_goodbye", silent=True)
        return Step()

    def _on_confirm_control(self, reply: Reply) -> Step:
        pending = self.state.pending_control or "do_not_call"
        said = self._control_request(reply)
        if said is not None and said != pending and not self._in_doubt(said, reply):
            return self._act_on_control(said, reply)  # asked about one, made another
        if self._says_no(reply, pending):
            return self._resume(Step(lead="go_on"))
        if reply.intent in ("affirm", "agree") or reply.keyed == "1" or said == pending:
            return self._honour_pending(pending)
        if self._answers_instead(reply):
            # "明天上午十点再打过来" to "您是要投诉吗？": not the request, an answer to the call
            # (the complaint was 我在开车呢 misheard).  The request was not made; the answer
            # is taken where the customer was.
            self._resume()
            return self.handle(reply)
        if reply.intent == "silence_timeout" or self.state.control_asks >= MAX_CONTROL_ASKS:
            if pending != "request_human":  # when in doubt, a do-not-call request stands
                return self._honour_pending(pending)
            if reply.intent == "silence_timeout":
                self._resume()
                return self._silence()
            return self._resume(Step(lead="go_on"))
        self.state.control_asks += 1
        return self._prompt(Step(lead="sorry"))

    def _answers_instead(self, reply: Reply) -> bool:
        """A clearly heard, confidently classified reply that neither confirms nor denies
        the request nor asks anything back: the customer is answering the call."""
        return (reply.intent not in _NO_ANSWER_TO_A_CONFIRMATION and self._heard_clearly(reply)
                and reply.intent_confidence >= self.script.min_control_confidence)

    def handle(self, reply: Reply) -> Step:
        raise NotImplementedError  # the call flow's entry point (flow.py)

    def _says_no(self, reply: Reply, pending: str) -> bool:
        if reply.intent == "deny" or reply.keyed == "2" or SAYS_NO.match(reply.text):
            return True
        return pending == "request_human" and bool(SAYS_NO_NEED.match(reply.text))

    def _honour_pending(self, pending: str) -> Step:
        if pending == "do_not_call":
            return self._do_not_call(self.state.pending_words)
        return self._escalate(pending)

    def _resume(self, step: Step | None = None) -> Step:
        """Back to the stage the customer was answering when the request was heard."""
        self.state.stage = self.state.resume_stage or "identity"
        self.state.pending_control, self.state.pending_words = None, ""
        return self._prompt(step) if step is not None else Step()
