"""Chat logic: the conversation tree and what fits in the model's context window."""
