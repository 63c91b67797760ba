"""Lectern's window, one package per region of the screen (map: ``app/ui/README.md``).

``main`` starts it; ``shell`` is the main window, its controller and what a job's
events do to it; ``library``, ``chat``, ``viewer``, ``context`` (the context map),
``settings`` and ``sessions`` are the regions; ``common`` holds what they share.
"""
