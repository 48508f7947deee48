"""l2l: teach a chat LLM a new language. Shared code behind the top-level scripts."""

__version__ = "0.1.0"
