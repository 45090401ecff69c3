"""An agent session manager: one instance per process, plus a cached conversation lookup."""

from dataclasses import dataclass, field
from functools import lru_cache


@dataclass
class Conversation:
    conversation_id: str
    turns: list[str] = field(default_factory=list)


class AgentManager:
    def __init__(self) -> None:
        self.agents: dict[str, Conversation] = {}

    def start(self, agent_id: str) -> Conversation:
        self.agents[agent_id] = Conversation(agent_id)
        return self.agents[agent_id]

    def get(self, agent_id: str) -> Conversation | None:
        return self.agents.get(agent_id)


manager = AgentManager()
current_session: Conversation | None = None


@lru_cache(maxsize=1024)
def load_conversation(conversation_id: str) -> Conversation:
    return Conversation(conversation_id)


def remember(conversation: Conversation) -> None:
    global current_session
    current_session = conversation
