"""loadgen: an open-loop load generator that measures what LLM tracing costs."""

__version__ = "0.1.0"
