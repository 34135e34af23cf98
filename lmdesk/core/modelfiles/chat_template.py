"""Render a model's chat template (Jinja from the model file) into the prompt text, in a sandbox.

The environment mirrors what transformers' `apply_chat_template` offers templates (trim_blocks,
lstrip_blocks, loop controls, `raise_exception`, `strftime_now`, a non-HTML-escaping `tojson`),
so a template renders here exactly as it does there. Templates come from downloaded files: they
are untrusted code, hence the ImmutableSandboxedEnvironment, and a budget on top of it: rendering
stops after RENDER_TIME_LIMIT seconds or when the request is cancelled (checked on every loop
iteration, call and attribute access), string/list repetition and concatenation are capped, and so
is the length of the prompt. Each ends in a GenerationError (RenderCancelled for a cancel), never in
a hung worker or an exhausted memory.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2
import jinja2.compiler
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

RENDER_TIME_LIMIT = 5.0  # seconds; real templates render in well under a millisecond
MAX_PROMPT_CHARS = 4_000_000  # far above any context window, low enough to be harmless in memory
MAX_VALUE_LENGTH = MAX_PROMPT_CHARS  # the longest string or list a template may build
_CHECK_EVERY = 64  # loop iterations, calls and lookups between two clock/cancel checks

_BROKEN_FIX = "choose another model, or report the broken template to its publisher"


class RenderCancelled(GenerationError):
    """Rendering the chat template stopped because the request was cancelled."""


class _Budget:
    """The time limit and cancel Event of one rendering."""

    def __init__(self, time_limit: float, cancel: threading.Event | None) -> None:
        self.time_limit = time_limit
        self.deadline = time.monotonic() + time_limit
        self.cancel = cancel
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % _CHECK_EVERY == 0:
            self.check()

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RenderCancelled("cancelled while the model's chat template was being rendered")
        if time.monotonic() > self.deadline:
            raise GenerationError(
                f"the model's chat template took longer than {self.time_limit:g} s to render and was stopped",
                _BROKEN_FIX,
            )


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("lmdesk_template_budget", default=None)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.tick()


def _too_big(what: str) -> GenerationError:
    return GenerationError(
        f"the model's chat template tried to build {what} longer than {MAX_VALUE_LENGTH:,} characters and was stopped",
        _BROKEN_FIX,
    )


def _check_length(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_VALUE_LENGTH:
        raise _too_big("a value")
    return value


_CHECKED_ITER = "lmdesk_checked_iter"  # the filter every for loop's iterable goes through


@jinja2.pass_context  # a context filter is never evaluated at compile time
def _checked_iter(context: jinja2.runtime.Context, iterable: Any) -> Any:
    for item in iterable:
        _tick()
        yield item


class _BudgetCodeGenerator(jinja2.compiler.CodeGenerator):
    """Compiles every for loop to iterate with budget checks and every `~` to a length check."""

    def visit_Template(self, node: jinja2.nodes.Template, frame: Any = None) -> None:
        for loop in node.find_all(jinja2.nodes.For):
            it = loop.iter
            if not (isinstance(it, jinja2.nodes.Filter) and it.name == _CHECKED_ITER):
                loop.iter = jinja2.nodes.Filter(it, _CHECKED_ITER, [], [], None, None, lineno=it.lineno)
        super().visit_Template(node, frame)

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: Any) -> None:
        self.write("environment.checked_length(")
        super().visit_Concat(node, frame)
        self.write(")")


class _BudgetedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus the rendering budget and the size caps."""

    code_generator_class = _BudgetCodeGenerator
    intercepted_binops = frozenset({"*", "+"})

    def checked_length(self, value: Any) -> Any:
        return _check_length(value)

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_VALUE_LENGTH:
                    raise _too_big("a repeated string or list")
        elif (operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple))
                and len(left) + len(right) > MAX_VALUE_LENGTH):
            raise _too_big("a string or list")
        return super().call_binop(context, operator, left, right)

    def call(self, context: jinja2.runtime.Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tick()
        for value in (*args, *kwargs.values()):
            # e.g. 'x'.center(10**10): no real template passes numbers this large
            if isinstance(value, int) and abs(value) > MAX_VALUE_LENGTH:
                raise _too_big("a value")
        return _check_length(super().call(context, obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)


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
    env = _BudgetedSandbox(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols, _GenerationTag]
    )
    env.filters["tojson"] = _tojson
    env.filters[_CHECKED_ITER] = _checked_iter
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
    *,
    cancel: threading.Event | None = None,
    time_limit: float = RENDER_TIME_LIMIT,
    **extra: Any,
) -> str:
    """The prompt text for `messages` under `template` (ChatML when None or empty).

    GenerationError when the template fails, renders nothing, runs past `time_limit` seconds or
    builds something too big; RenderCancelled when `cancel` is set while it renders."""
    compiled = compile_template(template or CHATML_TEMPLATE)
    budget = _Budget(time_limit, cancel)
    token = _budget.set(budget)
    try:
        pieces: list[str] = []
        total = 0
        for piece in compiled.generate(
            messages=_as_dicts(messages),
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token or "",
            eos_token=eos_token or "",
            **extra,
        ):
            total += len(piece)
            if total > MAX_PROMPT_CHARS:
                raise GenerationError(
                    f"the model's chat template produced a prompt longer than {MAX_PROMPT_CHARS:,} characters "
                    "and was stopped",
                    _BROKEN_FIX,
                )
            pieces.append(piece)
            budget.tick()
        budget.check()
    except GenerationError:
        raise
    except jinja2.exceptions.SecurityError as exc:
        raise GenerationError(f"the model's chat template tried something unsafe and was stopped ({exc})") from None
    except jinja2.TemplateError as exc:
        # raise_exception() in templates reports things like "roles must alternate user/assistant".
        raise GenerationError(f"the model's chat template refused this conversation: {exc}") from None
    except Exception as exc:  # a buggy template must not take the worker down
        log.debug("chat template failed", exc_info=True)
        raise GenerationError(f"the model's chat template failed: {type(exc).__name__}: {exc}") from None
    finally:
        _budget.reset(token)
    text = "".join(pieces)
    if not text:
        raise GenerationError("the model's chat template produced no prompt", _BROKEN_FIX)
    return text
