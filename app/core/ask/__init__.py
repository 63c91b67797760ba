"""Asking: plan a question (route, render, quote, cache plan), run the cascade
(draft, priming, escalation, review) and account for every call."""
