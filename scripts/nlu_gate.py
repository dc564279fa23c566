"""Fail unless the held-out intent accuracy reaches the gate; list the misclassified."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(report_path: str, gate: float) -> int:
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    accuracy = float(report["accuracy"])
    errors_path = Path(report_path).with_name("intent_errors.json")
    errors = json.loads(errors_path.read_text(encoding="utf-8")) if errors_path.exists() else []
    for error in errors:
        predicted = error.get("intent_prediction", {})
        print(f"  {error['text']!r}: expected {error['intent']}, "
              f"got {predicted.get('name')} ({predicted.get('confidence', 0):.2f})")
    print(json.dumps({"holdout_intent_accuracy": round(accuracy, 4), "gate": gate,
                      "errors": len(errors)}))
    return 0 if accuracy >= gate else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
