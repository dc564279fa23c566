"""Pure audio layer of the voice gateway: G.711 codecs, 20 ms frames, resampling, recording, VAD.

Everything here is synchronous and free of I/O except `StereoRecorder.write` and the recording
file of `wavstream` (`WavFile`, `finalise_partial`); async code in the gateway wraps them
(the call's recorder writes on a thread of its own).
"""
