"""Translation: planning a text into chunks, the prompt per chunk, and the glossary."""
