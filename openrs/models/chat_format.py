"""The R1-like chat format of the models openrs builds locally (tiny, mini): control tokens, chat template, and
the wrapping of a built ``tokenizers.Tokenizer`` into a transformers tokenizer that carries them."""

from __future__ import annotations

from typing import Any

# R1-like control tokens in ASCII. The closing think tag with its newlines is one token, as the
# R1 tokenizer keeps `</think>` whole: a random-init model then hits the format by chance, and
# GRPO has a signal to learn from.
BOS, EOS, PAD = "<|begin|>", "<|end|>", "<|endoftext|>"  # Qwen2 pads with <|endoftext|>
USER, ASSISTANT = "<|User|>", "<|Assistant|>"
THINK_TOKENS = ["\n</think>\n", "<think>\n", "</think>", "<think>", "\\boxed{"]

# One user turn after an optional system text; the generation prompt opens the think block, as
# DeepSeek-R1-Distill's template does, so completions start inside <think>.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}" + USER + "{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}" + ASSISTANT + "{{ message['content'] }}{{ eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "<think>\n{% endif %}"
)


def wrap_in_chat_format(tok: Any, model_max_length: int) -> Any:
    """``tok`` (a ``tokenizers.Tokenizer``) as a PreTrainedTokenizerFast with these control tokens, left padding
    and the chat template."""
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
        model_max_length=model_max_length,
    )
    wrapped.chat_template = TINY_CHAT_TEMPLATE
    return wrapped
