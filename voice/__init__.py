"""Waihu voice gateway: telephony, audio, ASR, TTS, call sessions, virtual customers."""
