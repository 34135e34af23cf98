"""Widgets and helpers of the Write pane."""
