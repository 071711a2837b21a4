"""Claude through the anthropic SDK: validated JSON answers within a timeout; callers fall back to the rules."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_SECRETISH = re.compile(
    r"(whsec_[A-Za-z0-9+/=]+|rly_[A-Za-z0-9_-]+|rrt_[A-Za-z0-9_-]+|v1,[A-Za-z0-9+/=]{20,}|"
    r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+|(?i:bearer)\s+\S+)"
)


class ClaudeUnavailable(Exception):
    """Any reason the Claude answer cannot be used (API error, timeout, malformed output)."""


def scrub(text: str, secrets: list[str]) -> str:
    """Remove known secrets and anything shaped like a key, token or signature from text sent to the model."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _SECRETISH.sub("[redacted]", text)


def without_query(url: str) -> str:
    """Keep scheme, host and path of a URL: query strings often carry tokens."""
    return url.split("?", 1)[0].split("#", 1)[0]


class Claude:
    """A small client: one system prompt, one user message, one JSON object back."""

    def __init__(self, api_key: str, model: str, timeout: float, base_url: str | None = None) -> None:
        import anthropic  # imported on first use: the SDK takes ~2 s to import, which every process start paid

        self.model = model
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    async def ask(self, system: str, facts: dict[str, Any], answer_type: type[T], secrets: list[str]) -> T:
        """Send `facts` (scrubbed) and return the model's JSON answer decoded as `answer_type`."""
        import anthropic

        prompt = scrub(msgspec.json.encode(facts).decode(), secrets)
        try:
            message = await self._client.messages.create(
                model=self.model,
                max_tokens=1024,
                system=system,
                messages=[{"role": "user", "content": prompt}],
            )
        except anthropic.APIError as exc:  # includes timeouts, connection errors and HTTP errors
            raise ClaudeUnavailable(f"{type(exc).__name__}") from None
        text = "".join(block.text for block in message.content if isinstance(block, anthropic.types.TextBlock)).strip()
        text = text.removeprefix("```json").removeprefix("```").removesuffix("```").strip()
        try:
            return msgspec.json.decode(text, type=answer_type)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ClaudeUnavailable(f"malformed answer: {str(exc)[:120]}") from None

    async def close(self) -> None:
        await self._client.close()
