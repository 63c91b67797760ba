"""The chat transcript widget (``TranscriptView``) and its message model."""

from app.ui.chat.model import ChatMessage, as_role, as_status
from app.ui.chat.view import TranscriptView

__all__ = ["ChatMessage", "TranscriptView", "as_role", "as_status"]
