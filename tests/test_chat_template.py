"""Chat templates: the embedded model's prompt equals transformers' rendering, token for token;
the sandbox and the helpers transformers offers templates behave the same here."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmdesk.core.modelfiles.chat_template import CHATML_TEMPLATE, render_chat
from lmdesk.core.errors import GenerationError
from lmdesk.core.modelfiles.gguf_info import read_gguf_info
from lmdesk.core.messages import ChatMessage as M

CONVERSATION = [
    M("system", "You are terse."),
    M("user", "Hi 你好 🌍 <b>&</b>"),
    M("assistant", "Hello!"),
    M("user", "What is 2+2?"),
]


@pytest.fixture(scope="module")
def hf_tokenizer(embedded_model_path):
    """transformers' tokenizer built from the same GGUF (no torch needed; ~7 s here)."""
    from transformers import AutoTokenizer

    p = Path(embedded_model_path)
    return AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)


@pytest.fixture(scope="module")
def backend(embedded_model_path):
    from lmdesk.backends import load_backend

    b = load_backend("llama", embedded_model_path)
    yield b
    b.close()


def test_prompt_equals_transformers(embedded_model_path, hf_tokenizer):
    info = read_gguf_info(embedded_model_path)
    ours = render_chat(CONVERSATION, info.chat_template, info.bos_token, info.eos_token)
    ref = hf_tokenizer.apply_chat_template(
        [m.as_dict() for m in CONVERSATION], tokenize=False, add_generation_prompt=True
    )
    assert ours == ref
    assert ours.endswith("<|im_start|>assistant\n")


def test_token_ids_equal_transformers(backend, hf_tokenizer):
    ref = hf_tokenizer.apply_chat_template(
        [m.as_dict() for m in CONVERSATION], tokenize=True, add_generation_prompt=True
    )
    ref_ids = list(ref["input_ids"] if hasattr(ref, "keys") else ref)
    ours = backend.tokenize_prompt(backend.render(CONVERSATION))
    assert ours == ref_ids
    bos = hf_tokenizer.bos_token_id
    assert ours[:2] != [bos, bos]  # no doubled BOS


def test_default_system_prompt_when_none_given(embedded_model_path, hf_tokenizer):
    info = read_gguf_info(embedded_model_path)
    msgs = [M("user", "Hello")]
    ours = render_chat(msgs, info.chat_template, info.bos_token, info.eos_token)
    assert ours == hf_tokenizer.apply_chat_template([m.as_dict() for m in msgs], tokenize=False,
                                                    add_generation_prompt=True)
    assert "SmolLM" in ours


def test_chatml_fallback_when_model_has_none():
    text = render_chat([M("user", "hi")], None)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert render_chat([M("user", "hi")], "") == text
    assert render_chat([M("user", "hi")], CHATML_TEMPLATE, add_generation_prompt=False).endswith("<|im_end|>\n")


# Templates in the styles of popular model families; both renderers must agree on each.
TEMPLATES = {
    "llama3": (
        "{{- bos_token }}{% for message in messages %}"
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    ),
    "indented_blocks": (
        "{% for message in messages %}\n"
        "    {% if message.role == 'system' %}\n"
        "[SYS]{{ message.content }}\n"
        "    {% else %}\n"
        "[{{ message.role | upper }}]{{ message.content }}{{ eos_token }}\n"
        "    {% endif %}\n"
        "{% endfor %}"
    ),
    "loop_controls_and_json": (
        "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}"
        "{{ m | tojson }}\n{% endfor %}"
    ),
    "namespace": (
        "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}"
        "{{ ns.n }} messages{% if add_generation_prompt %}>{% endif %}"
    ),
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_same_as_transformers_renderer(name):
    from transformers.utils.chat_template_utils import render_jinja_template

    msgs = [m.as_dict() for m in CONVERSATION]
    template = TEMPLATES[name]
    rendered, _ = render_jinja_template(
        conversations=[msgs], chat_template=template, add_generation_prompt=True, bos_token="<s>", eos_token="</s>"
    )
    assert render_chat(CONVERSATION, template, "<s>", "</s>") == rendered[0]


def test_tojson_does_not_html_escape():
    out = render_chat([M("user", "<b>&</b> 你好")], "{{ messages[0].content | tojson }}")
    assert out == '"<b>&</b> 你好"'


def test_strftime_now_and_raise_exception():
    assert render_chat([M("user", "x")], "{{ strftime_now('%Y') }}").isdigit()
    with pytest.raises(GenerationError, match="refused this conversation: roles must alternate"):
        render_chat([M("user", "x")], "{{ raise_exception('roles must alternate') }}")


@pytest.mark.parametrize(
    "evil",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% set x = [] %}{{ x.append(1) }}",
        "{{ messages.clear() }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_sandbox_blocks_unsafe_templates(evil):
    with pytest.raises(GenerationError):
        render_chat([M("user", "x")], evil)


def test_syntax_error_is_a_clear_error():
    with pytest.raises(GenerationError, match="syntax error"):
        render_chat([M("user", "x")], "{% for m in messages %}")


def test_plain_dicts_work_too():
    assert render_chat([{"role": "user", "content": "hi"}], None).startswith("<|im_start|>user\nhi")
