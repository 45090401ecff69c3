"""The demo assistant: deterministic and offline, so tests can assert on its replies.

Replace `reply` with a call to your model or agent. It receives the whole transcript, which the
hydration dependency has already recovered, whichever instance the request landed on.
"""

from collections.abc import Sequence

from .sessions.models import Turn


def reply(history: Sequence[Turn], text: str) -> str:
    number = sum(1 for turn in history if turn.role == "user") + 1
    return f'Message {number} received: "{text}"'
