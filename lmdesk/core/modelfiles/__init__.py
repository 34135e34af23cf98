"""Model files: GGUF metadata, finding models on disk, and chat templates."""
