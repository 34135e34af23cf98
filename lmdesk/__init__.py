"""lmdesk: a desktop app for chatting, drafting and translating with local language models."""

__version__ = "0.1.0"
