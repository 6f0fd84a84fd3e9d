"""Which arguments hold a batch of examples (by their name, as training code spells them)."""

from __future__ import annotations

import re

from jaxdoctor.trace.sharding.program import Arg

_BATCH_NAMES = re.compile(
    r"^(batch|batches|x|xs|inputs?|images?|imgs?|pixels?|tokens?|input_ids|token_ids|ids|labels?|targets?"
    r"|y|ys|data|obs|observations?|features?|examples?|samples?|text|audio|seqs?|sequences?|mask|masks"
    r"|segment_ids|positions|actions?|rewards?|pixel_values|attention_mask|src|tgt|sources?|inp|xb|yb"
    r"|frames?|videos?|states_batch|queries|documents?)$"
)
_KEY = re.compile(r"\['([^']*)'\]|\.(\w+)|\[(\d+)\]")


def parts(name: str) -> list[str]:
    """`batch['image']` → ['batch', 'image']; `state.params['w']` → ['state', 'params', 'w']."""
    head = re.match(r"[A-Za-z_]\w*", name)
    out = [head.group(0)] if head else []
    for m in _KEY.finditer(name[head.end() if head else 0 :]):
        out.append(next(g for g in m.groups() if g is not None))
    return out


def is_batch_like(a: Arg) -> bool:
    """A batch of examples: named like one (`batch`, `x`, `images`, `batch['label']`), with a
    leading dimension to split."""
    if len(a.shape) < 1 or a.shape[0] < 2:
        return False
    names = [p.lower() for p in parts(a.name)]
    if any("batch" in p for p in names):
        return True
    if any(p in ("params", "opt_state", "state", "model", "weights", "variables") for p in names[:-1]):
        return False
    return bool(names) and (_BATCH_NAMES.match(names[0]) is not None or _BATCH_NAMES.match(names[-1]) is not None)
