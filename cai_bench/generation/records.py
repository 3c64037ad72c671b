"""One generated CAI example, with the columns of HuggingFaceH4/cai-conversation-harmless."""

from __future__ import annotations

from pydantic import BaseModel, Field

Message = dict[str, str]


class CAIRecord(BaseModel):
    """A prompt's critique -> revision chain; `drop_reason` set means left out of the splits."""

    id: str
    init_prompt: str
    init_response: str
    critic_prompt: str
    critic_response: str
    revision_prompt: str
    revision_response: str
    principle_id: str
    principle_similarity: float | None = None
    constitution: str
    selection: str
    generator: str
    prompt: str
    messages: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    cleaning: list[str] = Field(default_factory=list)
    drop_reason: str | None = None
    finish_reasons: dict[str, str | None] = Field(default_factory=dict)
    category: str | None = None
    content_hash: str | None = None  # what it was made from (record_hash); a mismatch means generate anew
    revision_attempt: int = 0  # 0: the greedy revision; n: the n-th sampled retry of the second pass

    def sft_row(self) -> dict:
        return {"messages": self.messages}

    def pref_row(self) -> dict:
        """TRL's explicit-prompt conversational preference format."""
        return {
            "prompt": [{"role": "user", "content": self.init_prompt}],
            "chosen": [{"role": "assistant", "content": self.revision_response}],
            "rejected": [{"role": "assistant", "content": self.init_response}],
        }
