"""Plain-text processing: chunking and token budgets, incremental UTF-8 decoding, word diffs, languages, cleaning model replies."""
