"""The human side of an escalation: agents' presence, who gets the next offer and why, and
the agent figures (DESIGN.md, "The human side").  The rules are pure functions here; their
rows live in bot.store (``AgentStateRepo``, ``OfferRepo``, ``DispositionRepo``)."""
