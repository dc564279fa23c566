"""The bot-voice intelligibility benchmark behind `bench/tts.py` (see that file for what it
measures).

- `compare`: how a prompt and its transcript are compared: the same normalisation on both
  sides (script, punctuation, equivalent writings, numbers by value), the character error
  and the numbers, dates and prices that came back wrong.
"""
