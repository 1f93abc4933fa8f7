"""The R1-like chat format of the models openrs builds locally (tiny, mini): control tokens and chat template."""

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
