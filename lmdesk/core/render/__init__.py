"""HTML for Qt rich text (markdown with highlighted code)."""
