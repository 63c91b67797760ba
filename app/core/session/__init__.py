"""Sessions: the SQLite store, the append-only log of one session, and export.

``Session`` (in ``log``) turns the store's events back into the corpus, the
conversation and the spend; ``store`` owns the database; ``records`` holds the
values read back; ``answer_writer`` streams an answer into its row.
"""

from app.core.session.log import *  # noqa: F403
from app.core.session.log import __all__ as __all__
