"""Render a model's chat template (Jinja from the model file) into the prompt text, in a sandbox.

The environment mirrors what transformers' `apply_chat_template` offers templates (trim_blocks,
lstrip_blocks, loop controls, `raise_exception`, `strftime_now`, a non-HTML-escaping `tojson`),
so a template renders here exactly as it does there. Templates come from downloaded files: they
are untrusted code, hence the ImmutableSandboxedEnvironment.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from lmdesk.core.errors import GenerationError
from lmdesk.core.messages import ChatMessage

log = logging.getLogger("lmdesk.chat_template")

# Used when the model file carries no template: ChatML, the most widely understood format.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class _GenerationTag(jinja2.ext.Extension):
    """Accept `{% generation %}…{% endgeneration %}` (used by training templates) as a no-op block."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.Scope(body).set_lineno(lineno)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    # Jinja's own tojson HTML-escapes '<' and '&', which would change the prompt text.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@functools.lru_cache(maxsize=16)
def compile_template(source: str) -> jinja2.Template:
    """Compile a chat template once (cached by its text); GenerationError if it has a syntax error."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols, _GenerationTag]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise GenerationError(
            f"the model's chat template has a syntax error (line {exc.lineno}: {exc.message})",
            "use a different model file, or report it to the model's publisher",
        ) from None


def _as_dicts(messages: Sequence[ChatMessage | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [m.as_dict() if isinstance(m, ChatMessage) else dict(m) for m in messages]


def render_chat(
    messages: Sequence[ChatMessage | Mapping[str, Any]],
    template: str | None,
    bos_token: str | None = None,
    eos_token: str | None = None,
    add_generation_prompt: bool = True,
    **extra: Any,
) -> str:
    """The prompt text for `messages` under `template` (ChatML when None or empty)."""
    compiled = compile_template(template or CHATML_TEMPLATE)
    try:
        return compiled.render(
            messages=_as_dicts(messages),
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token or "",
            eos_token=eos_token or "",
            **extra,
        )
    except jinja2.exceptions.SecurityError as exc:
        raise GenerationError(f"the model's chat template tried something unsafe and was stopped ({exc})") from None
    except jinja2.TemplateError as exc:
        # raise_exception() in templates reports things like "roles must alternate user/assistant".
        raise GenerationError(f"the model's chat template refused this conversation: {exc}") from None
    except Exception as exc:  # a buggy template must not take the worker down
        log.debug("chat template failed", exc_info=True)
        raise GenerationError(f"the model's chat template failed: {type(exc).__name__}: {exc}") from None
