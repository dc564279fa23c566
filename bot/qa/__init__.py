"""Quality review of recorded calls: the QA samples (sampling.py, draw.py, population.py)
and the automatic flags of a call (flags.py, callview.py).  A reviewer's verdict and the
follow-up call of a non-compliant sale are bot/campaigns/qa.py."""
