"""Model backends behind one streaming contract (see ``backends.base``). Never imports Qt."""
