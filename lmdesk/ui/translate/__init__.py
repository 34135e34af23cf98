"""Widgets of the Translate pane."""
