"""Pure audio layer of the voice gateway: G.711 codecs, 20 ms frames, resampling, recording, VAD.

Everything here is synchronous and free of I/O except `StereoRecorder.write`; async code in the
gateway wraps it.
"""
