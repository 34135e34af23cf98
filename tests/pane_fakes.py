"""A fake model for the Write and Translate pane tests: it answers with a function of the text the
prompt carries (so a diff or a translation has something real to show), word by word."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from lmdesk.backends.fake import FakeBackend
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.core.stats import GenerationStats
from lmdesk.engine.bridge import EngineBridge


def prompt_text(messages: Sequence[ChatMessage]) -> str:
    """The user's text inside a Write prompt (<text>…</text>) or a Translate prompt."""
    user = messages[-1].content
    m = re.search(r"<text>\n(.*)\n</text>", user, re.DOTALL)
    if m:
        return m.group(1)
    return user.split(":\n\n", 1)[1] if user.startswith(("Translate into", "(Context")) else user


@dataclass
class EchoBackend(FakeBackend):
    """Replies `reply(text)` where text is what the prompt asks to work on, one word per piece."""

    reply: Callable[[str], str] = field(default=lambda text: text)
    texts: list[str] = field(default_factory=list)  # the text of each prompt, in order

    def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str | GenerationStats]:
        text = prompt_text(messages)
        self.texts.append(text)
        self.pieces = tuple(re.findall(r"\s*\S+\s*|\s+", self.reply(text))) or ("",)
        return super().generate(messages, params, cancel)


def make_bridge(qtbot, backend: EchoBackend) -> EngineBridge:
    """A bridge whose loader returns `backend`, with it loaded."""
    bridge = EngineBridge(loader=lambda *_args: backend)
    with qtbot.waitSignal(bridge.load_model("fake", "echo").sig_finished, timeout=10_000):
        pass
    return bridge
