"""Failure intelligence: a deterministic rule-based analyser, and Claude when ANTHROPIC_API_KEY is set."""
