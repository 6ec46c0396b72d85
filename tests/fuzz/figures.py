"""What each fuzz run did, for the session's closing summary: examples sent, the endpoints or
frame types they reached (with the statuses or answers seen), the time taken, and every
distinct failure with one input that shows it."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    name: str
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    examples: int = 0
    covered: Counter[str] = field(default_factory=Counter)  # endpoint or frame type -> examples
    outcomes: Counter[str] = field(default_factory=Counter)  # "target -> status or answer"
    findings: dict[str, str] = field(default_factory=dict)  # distinct failure -> one input showing it

    def sent(self, target: str, outcome: str) -> None:
        self.examples += 1
        self.covered[target] += 1
        self.outcomes[f"{target} -> {outcome}"] += 1

    def found(self, key: str, example: str) -> None:
        """The first input that shows each distinct failure; the rest only add to its count."""
        self.findings.setdefault(key, example)

    def finish(self) -> None:
        self.seconds = time.monotonic() - self.started

    def failure_report(self) -> str:
        lines = [f"{len(self.findings)} distinct failure(s) in {self.name}:"]
        for key, example in self.findings.items():
            lines.append(f"- {key}\n    {example}")
        return "\n".join(lines)

    def summary(self) -> list[str]:
        lines = [
            f"{self.name}: {self.examples} examples in {self.seconds:.1f} s, "
            f"{len(self.covered)} targets, {len(self.findings)} distinct failure(s)"
        ]
        for target, count in sorted(self.covered.items()):
            seen = sorted(
                (outcome.split(" -> ", 1)[1], n)
                for outcome, n in self.outcomes.items()
                if outcome.startswith(target + " -> ")
            )
            lines.append(f"    {target}: {count} ({', '.join(f'{status} x{n}' for status, n in seen)})")
        lines.extend(f"    FAILURE {key}" for key in self.findings)
        return lines


TALLIES: list[Tally] = []
