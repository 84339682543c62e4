"""The questions file of ``imprint eval`` — the format and its parser live in ``training.questions`` (the
adapter lifecycle's eval gate reads the same files inside the service); this name is kept for eval code.

    python -m eval.questions eval/examples/family/questions.jsonl     # checks a file, prints counts per kind
"""

from __future__ import annotations

import sys
from collections import Counter

from training.questions import Question, load_questions

__all__ = ["Question", "load_questions"]

if __name__ == "__main__":
    print(dict(Counter(q.kind for q in load_questions(sys.argv[1]))))
