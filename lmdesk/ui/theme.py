"""Light and dark themes: follow the OS colour scheme unless the user picks one.

We set explicit Fusion palettes rather than relying on the platform style, because some platforms
(and the offscreen one used by tests and screenshots) ignore the requested colour scheme.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")


def _palette(dark: bool) -> QPalette:
    p = QPalette()
    if dark:
        colors = {
            QPalette.Window: "#202124", QPalette.WindowText: "#e8eaed", QPalette.Base: "#17181a",
            QPalette.AlternateBase: "#26282b", QPalette.Text: "#e8eaed", QPalette.Button: "#2d2f33",
            QPalette.ButtonText: "#e8eaed", QPalette.Highlight: "#3b6fd8", QPalette.HighlightedText: "#ffffff",
            QPalette.ToolTipBase: "#2d2f33", QPalette.ToolTipText: "#e8eaed", QPalette.PlaceholderText: "#8a8d91",
            QPalette.Link: "#8ab4f8", QPalette.Mid: "#5f6368",
        }
    else:
        colors = {
            QPalette.Window: "#f3f4f6", QPalette.WindowText: "#1f2328", QPalette.Base: "#ffffff",
            QPalette.AlternateBase: "#f6f8fa", QPalette.Text: "#1f2328", QPalette.Button: "#f6f8fa",
            QPalette.ButtonText: "#1f2328", QPalette.Highlight: "#2f6fde", QPalette.HighlightedText: "#ffffff",
            QPalette.ToolTipBase: "#ffffff", QPalette.ToolTipText: "#1f2328", QPalette.PlaceholderText: "#8c959f",
            QPalette.Link: "#0969da", QPalette.Mid: "#8c959f",
        }
    for role, value in colors.items():
        p.setColor(role, QColor(value))
    for role in (QPalette.Text, QPalette.ButtonText, QPalette.WindowText):
        p.setColor(QPalette.Disabled, role, QColor("#6e7681" if dark else "#a0a7b0"))
    return p


def system_is_dark() -> bool:
    """What the OS asks for; Unknown (e.g. offscreen) counts as light."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def is_dark(theme: str) -> bool:
    """Whether `theme` ("system", "light", "dark") resolves to dark right now."""
    return theme == "dark" or (theme == "system" and system_is_dark())


def apply_theme(app: QApplication, theme: str) -> bool:
    """Apply a theme to the whole app; returns True when the result is dark."""
    dark = is_dark(theme)
    app.setStyle("Fusion")
    app.setPalette(_palette(dark))
    app.setProperty("lmdesk_dark", dark)
    return dark


@dataclass(frozen=True)
class ViewColors:
    """Colours of the chat transcript (HTML in a QTextBrowser takes plain colour strings)."""

    text: str
    muted: str
    user_bg: str
    user_border: str
    accent: str
    link: str
    warn: str
    error: str


LIGHT_VIEW = ViewColors("#1f2328", "#6e7781", "#eef3fb", "#d0dcf0", "#2f5fb3", "#0969da", "#9a6700", "#cf222e")
DARK_VIEW = ViewColors("#e8eaed", "#9198a1", "#23293a", "#34405a", "#8ab4f8", "#4493f8", "#d29922", "#f85149")


def view_colors(dark: bool) -> ViewColors:
    """The transcript colours for a light or dark theme."""
    return DARK_VIEW if dark else LIGHT_VIEW


def app_is_dark() -> bool:
    """Whether apply_theme last chose dark (False before any theme was applied)."""
    app = QApplication.instance()
    return bool(app.property("lmdesk_dark")) if app is not None else False
