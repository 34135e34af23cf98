"""The `torch` backend: Hugging Face transformers models on cuda → mps → cpu.

Loads model folders (safetensors; pickle only when allowed, with weights_only=True) and GGUF files
(converted once to safetensors, see hf_convert.py), optionally with a PEFT LoRA adapter merged in.
Generation runs transformers' `generate` on its own thread and streams through a
TextIteratorStreamer; long prompts are pre-filled in slices first so Stop works during them.
This module imports torch, so only `lmdesk.backends.load_backend("torch", …)` imports it.
"""

from __future__ import annotations

import gc
import inspect
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence

import torch
from transformers import AutoModelForCausalLM, DynamicCache, StoppingCriteriaList

from lmdesk.backends.base import Capabilities, ProgressCallback
from lmdesk.backends.hf_convert import cache_root, ensure_converted
from lmdesk.backends.hf_device import DeviceChoice, choose_device, estimate_memory
from lmdesk.backends.hf_folder import ModelFolder, check_loadable, inspect_model
from lmdesk.backends.hf_loading import apply_lora, context_length, first_line, load_failure, load_tokenizer
from lmdesk.backends.hf_generate import CancelCriteria, TokenStreamer, neutral_generation_kwargs, sampling_plan
from lmdesk.core.chat.context_window import fit_and_tokenize
from lmdesk.core.modelfiles.chat_template import RenderCancelled, render_chat
from lmdesk.core.errors import GenerationError, LmdeskError, ModelLoadError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats
from lmdesk.core.text.stream import TextStream

log = logging.getLogger("lmdesk.backends.hf")

STREAM_POLL_SECONDS = 0.1  # the streamer's queue timeout: how often we check that generate is alive
PREFILL_MIN_TOKENS = 128  # shorter prompts go straight to generate (pre-fill in slices costs a little)
SLICE_TARGET_SECONDS = 0.15  # aim for this much work per pre-fill slice: Stop's worst-case delay
SLICE_MIN, SLICE_START, SLICE_MAX = 16, 64, 2048
GENERATE_THREAD = "lmdesk-hf-generate"


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        mps.empty_cache()


def load(path: str, options: LoadOptions, progress: ProgressCallback, cancel: threading.Event) -> HFBackend:
    """Loader for the registry (see lmdesk.backends.load_backend)."""
    folder = inspect_model(path)
    span = (0.0, 1.0)
    if folder.kind == "gguf":
        # Conversion dominates a first load; a cached one reports 0→0.7 at once.
        converted = ensure_converted(folder.path, lambda f: progress(0.7 * f), cancel, cache_root(options.cache_dir))
        folder, span = inspect_model(converted), (0.7, 1.0)

    def step(f: float) -> None:
        progress(span[0] + (span[1] - span[0]) * f)
        if cancel.is_set():
            raise ModelLoadError("loading was cancelled")

    needs_code = check_loadable(folder, options.allow_pickle, options.trust_remote_code)
    choice = choose_device(options)
    n_ctx = context_length(folder.config, options.n_ctx)
    estimate = estimate_memory(folder.path, folder.config, choice, n_ctx)
    log.info("loading %s on %s (%s): %s", folder.path, choice.device, choice.dtype, estimate.describe())
    if not estimate.fits():
        raise ModelLoadError(
            f"{folder.path.name} does not fit in memory on {choice.device} in {choice.dtype} ({estimate.describe()})",
            "close other programs, choose a smaller dtype or context size, or another device",
        )
    if options.n_threads and choice.device == "cpu":
        torch.set_num_threads(options.n_threads)
    step(0.05)
    tokenizer = load_tokenizer(folder, needs_code)
    step(0.15)
    model = None
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder.path),
            dtype=choice.torch_dtype(),
            device_map=choice.device,
            use_safetensors=folder.kind == "safetensors",
            weights_only=True,  # pickle checkpoints (allowed above) may only hold tensors
            trust_remote_code=needs_code,
        )
        step(0.85)
        if options.lora_path:
            model = apply_lora(model, options.lora_path, options.allow_pickle)
        model.eval()
        step(1.0)
    except BaseException as exc:
        model = None  # drop the half-loaded weights before freeing memory
        _free_memory()
        if isinstance(exc, LmdeskError):
            raise
        if _is_oom(exc):
            raise ModelLoadError(
                f"not enough memory to load {folder.path.name} on {choice.device} in {choice.dtype} "
                f"(estimate: {estimate.describe()})",
                "choose a smaller dtype or model, or the cpu device",
            ) from exc
        if isinstance(exc, Exception):
            raise load_failure(folder.path.name, exc) from exc
        raise
    return HFBackend(model, tokenizer, folder, choice, n_ctx, options.lora_path, source_path=str(path))


class HFBackend:
    """A loaded transformers model that streams chat replies (see the module docstring)."""

    name = "torch"

    def __init__(self, model, tokenizer, folder: ModelFolder, choice: DeviceChoice, n_ctx: int,
                 lora_path: str | None = None, source_path: str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.folder = folder  # what was loaded: for a GGUF file, its converted copy in the cache
        self.model_path = source_path or str(folder.path)  # what the user chose
        self.context_length = n_ctx
        self.device = choice.device
        self.dtype = choice.dtype
        self.lora_path = lora_path
        self.capabilities = Capabilities(
            streaming=True, cancel_during_prompt=True, prefix_cache=False, gpu=choice.device != "cpu", lora=True
        )
        self._eos_ids = self._collect_eos_ids()
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self._eos_ids, default=0)
        self._keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._slice = SLICE_START
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # set by close(): ends a generate still running
        self._closed = False

    def _collect_eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for value in (getattr(self.model.generation_config, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    # ------------------------------------------------------------ prompt tokens

    def prompt_ids(self, messages: Sequence[ChatMessage], cancel: threading.Event | None = None) -> list[int]:
        """Token ids of the chat template applied to `messages`, with the generation prompt.

        Rendered as transformers' `apply_chat_template` renders it, but in lmdesk's budgeted
        sandbox (the template is untrusted code: time limit, size caps, Stop), then tokenised
        without adding special tokens, as `apply_chat_template(tokenize=True)` does."""
        tok = self.tokenizer
        template = tok.chat_template
        if isinstance(template, dict):  # named templates: the default one, as transformers picks
            template = template.get("default") or next(iter(template.values()), None)
        special = {k: v for k, v in tok.special_tokens_map.items() if isinstance(v, str) and k not in ("bos_token", "eos_token")}
        text = render_chat(messages, template, tok.bos_token, tok.eos_token, cancel=cancel, **special)
        return list(tok(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the rendered prompt for `messages` takes (with the generation prompt)."""
        self._check_open()
        return len(self.prompt_ids(messages))

    # ------------------------------------------------------------ generation

    def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str | GenerationStats]:
        """Yield text pieces, then one GenerationStats. Checks `cancel` between tokens and pre-fill slices."""
        self._check_open()
        start = time.perf_counter()
        n_ctx = self.context_length
        try:
            ids, dropped = fit_and_tokenize(
                messages, lambda m: len(self.prompt_ids(m, cancel)), lambda m: self.prompt_ids(m, cancel), n_ctx, params
            )
        except RenderCancelled:  # Stop while the template was rendering
            yield GenerationStats(stop_reason="cancelled")
            return
        if not ids:
            raise GenerationError("the model's chat template produced no prompt",
                                  "choose another model, or report the broken template to its publisher")
        stats = GenerationStats(stop_reason="stop", prompt_tokens=len(ids), dropped_messages=dropped)
        max_new = max(1, min(params.max_tokens, n_ctx - len(ids)))
        try:
            yield from self._run(ids, params, max_new, cancel, stats, start)
        except LmdeskError:
            raise
        except Exception as exc:
            if _is_oom(exc):
                _free_memory()
                raise GenerationError(
                    f"out of memory on {self.device} while generating",
                    "shorten the conversation or lower max tokens, or load the model with a smaller dtype",
                ) from exc
            log.warning("generation failed", exc_info=True)
            raise GenerationError(f"transformers failed while generating: {first_line(exc)}") from exc

    def _prefill(self, input_ids: torch.Tensor, cancel: threading.Event) -> tuple[DynamicCache | None, int]:
        """Run all prompt tokens but the last through the model in slices; returns (cache, tokens done).

        transformers' generate evaluates the whole prompt in one forward pass that cannot be
        interrupted; slicing it ourselves lets Stop act within ~SLICE_TARGET_SECONDS on long pastes.
        """
        n = input_ids.shape[1] - 1  # generate must see the last prompt token to produce logits
        if n < PREFILL_MIN_TOKENS:
            return None, 0
        cache = DynamicCache(config=self.model.config)
        extra = {"logits_to_keep": 1} if self._keep_logits else {}
        done = 0
        with torch.inference_mode():
            while done < n:
                if cancel.is_set() or self._stop.is_set():
                    break
                end = min(done + self._slice, n)
                t = time.perf_counter()
                self.model(input_ids=input_ids[:, done:end], past_key_values=cache, use_cache=True, **extra)
                rate = (end - done) / max(time.perf_counter() - t, 1e-6)
                self._slice = int(min(max(rate * SLICE_TARGET_SECONDS, SLICE_MIN), SLICE_MAX))
                done = end
        return cache, done

    def _run(self, ids: list[int], params: GenerationParams, max_new: int, cancel: threading.Event,
             stats: GenerationStats, start: float) -> Iterator[str | GenerationStats]:
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.model.device)
        cache, done = self._prefill(input_ids, cancel)
        if cancel.is_set() or self._stop.is_set():
            stats.stop_reason, stats.prompt_tokens_evaluated = "cancelled", done
            yield stats
            return
        stats.prompt_tokens_evaluated = len(ids)
        plan = sampling_plan(params)
        streamer = TokenStreamer(self.tokenizer, self._eos_ids, timeout=STREAM_POLL_SECONDS)
        stop_strings = threading.Event()  # set when a stop string appeared in the text
        kwargs = dict(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new,
            min_new_tokens=0,
            streamer=streamer,
            logits_processor=plan.processors,
            stopping_criteria=StoppingCriteriaList([CancelCriteria(cancel, stop_strings, self._stop)]),
            eos_token_id=sorted(self._eos_ids) or None,
            pad_token_id=self._pad_id,
            **neutral_generation_kwargs(plan),
        )
        if cache is not None:
            kwargs["past_key_values"] = cache
        errors: list[BaseException] = []

        def target() -> None:
            try:
                if plan.seed is not None:
                    torch.manual_seed(plan.seed)  # seeds every device; generate draws from the global RNG
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 — forwarded to the consumer below
                errors.append(exc)
                streamer.end()  # wake the consumer (generate calls end() itself on success)

        thread = threading.Thread(target=target, name=GENERATE_THREAD, daemon=True)
        self._thread = thread
        text = TextStream(params.stop)
        first: float | None = None
        thread.start()
        try:
            while True:
                try:
                    piece = next(streamer)
                except StopIteration:
                    break
                except queue.Empty:
                    if not thread.is_alive() and streamer.text_queue.empty():
                        break
                    continue
                out = text.feed_text(piece)
                if text.stopped:
                    stop_strings.set()
                if out:
                    if first is None:
                        first = time.perf_counter()
                        stats.time_to_first_token = first - start
                    yield out
            thread.join()
            if errors:
                raise errors[0]
            tail = text.flush()
            if tail:
                if first is None:
                    first = time.perf_counter()
                    stats.time_to_first_token = first - start
                yield tail
        finally:
            # Also reached when the consumer closes this generator early: stop generate, then wait.
            stop_strings.set()
            thread.join()
            self._thread = None
        stats.generated_tokens = streamer.generated
        stats.generation_seconds = 0.0 if first is None else time.perf_counter() - first
        if cancel.is_set():
            stats.stop_reason = "cancelled"
        elif text.stopped or streamer.saw_eos:
            stats.stop_reason = "stop"
        else:
            stats.stop_reason = "length"
        yield stats

    # ------------------------------------------------------------ lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise GenerationError("the model was closed", "load a model again")

    def close(self) -> None:
        """Stop a running generate, wait for its thread, and free the model's memory."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self.model = None
        self.tokenizer = None
        _free_memory()
