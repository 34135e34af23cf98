"""Persistence: the SQLite store of conversations, its schema migrations, presets and drafts, export/import, and the writer that saves a streaming reply."""
