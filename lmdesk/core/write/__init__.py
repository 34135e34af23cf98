"""The Write pane's actions and their prompts."""
