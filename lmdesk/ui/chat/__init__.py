"""The Chat pane: conversations with history, branches, streaming, settings and presets."""

from lmdesk.ui.chat.pane import ChatPane

__all__ = ["ChatPane"]
