"""The class head's label set: which categories become classes (light: no numpy, no torch)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from emolive.trainer.errors import TrainerError

if TYPE_CHECKING:
    from emolive.trainer.data.utterance import Utterance

NO_CATEGORY = ("no_agreement", "other")  # raters who did not agree, or chose none of the categories
NOT_A_CLASS = ("", *NO_CATEGORY)
CLASS_SETS = ("shared", "all")


def class_names_of(utts: Iterable[Utterance], which: str = "shared") -> list[str]:
    """The class head's labels, sorted (MSP's 'no agreement' and 'other' are never classes).

    "shared": the categories found in at least two corpora (all of them when the data is one
    corpus). A category only one corpus has (EmoDB's boredom, RAVDESS's calm and surprise)
    would teach the head to recognise that corpus's recording conditions rather than the
    emotion; such clips keep their dimensional targets and are left out of the class loss.
    "all": every category in the data.
    """
    if which not in CLASS_SETS:
        raise TrainerError(f"class set {which!r} is not one of {', '.join(CLASS_SETS)}")
    utts = list(utts)
    corpora_of: dict[str, set[str]] = {}
    for u in utts:
        if u.emotion not in NOT_A_CLASS:
            corpora_of.setdefault(u.emotion, set()).add(u.corpus)
    n_corpora = len({u.corpus for u in utts})
    if which == "all" or n_corpora < 2:
        return sorted(corpora_of)
    return sorted(c for c, where in corpora_of.items() if len(where) >= 2)
