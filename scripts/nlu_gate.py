"""Fail unless the held-out intent accuracy reaches the gate; list the misclassified and
print the figures to report: the accuracy, the number of examples, and the f1 of the
intents whose boundaries the call flow relies on (the refusals and the two kinds of yes).

    python scripts/nlu_gate.py results/nlu/intent_report.json 0.95
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# What each of these makes the bot do differs (actions/flow.py, actions/flowoffer.py):
# a weak yes is asked again, a consent is read back, a bare no asks for the reason, a
# reason is recorded, "not now" schedules a callback, the controls end the call.
BOUNDARY_INTENTS = ("affirm", "agree", "deny", "not_needed", "undecided", "busy_call_later",
                    "too_expensive", "distrust", "request_human", "complain", "do_not_call")


def main(report_path: str, gate: float) -> int:
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    accuracy = float(report["accuracy"])
    errors_path = Path(report_path).with_name("intent_errors.json")
    errors = json.loads(errors_path.read_text(encoding="utf-8")) if errors_path.exists() else []
    for error in errors:
        predicted = error.get("intent_prediction", {})
        print(f"  {error['text']!r}: expected {error['intent']}, "
              f"got {predicted.get('name')} ({predicted.get('confidence', 0):.2f})")
    f1 = {intent: round(float(report[intent]["f1-score"]), 4)
          for intent in BOUNDARY_INTENTS if intent in report}
    for intent, score in f1.items():
        print(f"  f1 {intent:<16} {score:.3f}  (support {report[intent]['support']})")
    print(json.dumps({"holdout_intent_accuracy": round(accuracy, 4), "gate": gate,
                      "examples": int(report["weighted avg"]["support"]),
                      "errors": len(errors), "f1": f1}))
    return 0 if accuracy >= gate else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
