"""The call as a chain of small processors joined by typed events (after pipecat).

    leg.rx ─CallerAudio─▶ endpointing ─SpeechStarted/Ended─▶ speaker (barge-in)
    leg.events ─Digit─────────────────────────────────────▶ │
        ▶ asr ─Transcribed─▶ announcement screen ─CallerInput─▶ dtmf collector
        ▶ dialogue turn (the caller's inputs, Rasa) ─CallerDone─▶ recorder

- `events`: the event types and the `Processor` base (`process`, `push`, `chain`);
- `timeline`: the call's clock and its turns on the event bus;
- `endpointing`, `asr`, `announcement`, `dtmf`, `turn`, `speaker`, `recorder`: one stage
  each; `transfer`: the hand-over to an agent.

`voice.session.CallSession` wires them and runs the call's life (greeting, the
conversation loop, a hang-up, an announcement, a failure, the end).  Each stage is
testable alone between a source and a sink (`tests/unit/voice/pipeline_helpers.py`).
"""
