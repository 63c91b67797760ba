"""Shared by every region: escaping untrusted text, light and dark, dialog parts, tasks."""
