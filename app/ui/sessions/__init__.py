"""Sessions: the dialog (list, open, rename, delete, export) and the session tools."""
