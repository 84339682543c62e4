"""Answer scoring for ``imprint eval`` — the rules live in ``training.scoring`` (the adapter lifecycle's eval
gate scores with the same ones inside the service); this name is kept for eval code.

    from eval.scoring import is_correct
    is_correct("老大是哥哥JIM。", ["jim"])              # True
"""

from __future__ import annotations

from training.scoring import contains_any, field_scores, is_abstention, is_correct

__all__ = ["contains_any", "field_scores", "is_abstention", "is_correct"]
