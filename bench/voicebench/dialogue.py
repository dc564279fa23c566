"""The scripted dialogue that stands in for Rasa, so the figures are the gateway's."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bot import channel

GREETING = "您好，这里是外呼服务中心，我们在做一次服务回访，请问您现在方便说话吗？"
QUESTIONS = ("请问您对我们的服务满意吗？", "您最近一个月使用过我们的产品吗？",
             "请问您愿意参加我们的会员活动吗？", "您是否需要我们再发一条短信给您？",
             "请问这个号码是您本人在使用吗？", "您还有其他问题需要咨询吗？")
GOODBYE = "好的，感谢您的配合，祝您生活愉快，再见。"


class ScriptedDialogue:
    """Rasa's REST reply shape without Rasa: greeting, questions, goodbye + hangup; every
    answer to the caller carries the classification the deciding action always sends (the
    gateway takes a reply without it for a dead action server).

    `listens` (bench/turns.py) gives the `listen` of each question in turn, the greeting's
    first; `log` keeps when (monotonic clock, shared with the simphone's process) each
    answer arrived."""

    def __init__(self, questions: int, hints: tuple[str, ...],
                 listens: Sequence[dict[str, Any]] = ()) -> None:
        self.questions = questions
        self.listen = {"expect": "yes_no", "hints": list(hints), "dtmf_max": 0, "timeout_s": 8}
        self.listens = list(listens)
        self.turn: dict[str, int] = defaultdict(int)
        self.heard: dict[str, list[str]] = defaultdict(list)
        self.log: dict[str, list[tuple[float, str]]] = defaultdict(list)

    def texts(self) -> list[str]:
        return [GREETING, *QUESTIONS, GOODBYE]

    async def send(self, sender: str, message: str,
                   metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        n = self.turn[sender]
        self.turn[sender] += 1
        if n:
            self.heard[sender].append(message)
            self.log[sender].append((time.monotonic(), message))
        classified = [{"recipient_id": sender,
                       "custom": channel.classified_payload("scripted", 1.0)}] if n else []
        if n > self.questions:
            return [*classified, {"recipient_id": sender, "text": GOODBYE},
                    {"recipient_id": sender, "custom": {"hangup": True}}]
        text = GREETING if n == 0 else QUESTIONS[(n - 1) % len(QUESTIONS)]
        listen = self.listens[n % len(self.listens)] if self.listens else self.listen
        return [*classified, {"recipient_id": sender, "text": text},
                {"recipient_id": sender, "custom": {"listen": dict(listen)}}]
