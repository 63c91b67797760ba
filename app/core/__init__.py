"""Lectern's logic: ingestion, corpus, sessions, prompts, pricing. Never imports Qt."""
