"""Exercises of lesson 23 (further reading)."""
import numpy as np

from labkit import reading
from labkit.exercises import Exercise, register

_CATALOG = [
    reading.Reference("L. Gao, J. Schulman, J. Hilton", 2022, "Scaling Laws for Reward Model Overoptimization",
                      "arXiv:2210.10760 (ICML 2023)", "preferences", (5,)),
    reading.Reference("R. Bommasani et al.", 2021, "On the Opportunities and Risks of Foundation Models",
                      "arXiv:2108.07258", "alignment"),
    reading.Reference("C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger", 2017, "On Calibration of Modern Neural Networks",
                      "ICML", "robustness", (3,)),
    reading.Reference("M. Abadi et al.", 2016, "Deep Learning with Differential Privacy", "CCS", "privacy", (20,)),
]


def _c(title, year, where):
    return {"title": title, "year": year, "where": where}


def _audit_cases(rng: np.random.Generator):
    gao, fm, guo, dp = (r.title for r in _CATALOG)
    cases = [
        (([_c(gao, 2022, "arXiv:2210.10760")], _CATALOG), {}),            # right
        (([_c(gao, 2023, "ICML")], _CATALOG), {}),                         # the venue's year is right too
        (([_c(gao.upper() + "!", 2021, "ICML")], _CATALOG), {}),           # case and punctuation ignored; wrong year
        (([_c(guo, 2017, "NeurIPS")], _CATALOG), {}),                      # wrong venue
        (([_c(guo, 2017, "icml 2017")], _CATALOG), {}),                    # venue words, any case
        (([_c(dp, None, "")], _CATALOG), {}),                              # nothing to check but the title
        (([_c("Scalable Oversight via Selective Delegation", None, "arXiv:1802.07258"),
           _c(fm, None, "arXiv:2108.07258")], _CATALOG), {}),              # slide 16: repeated number, unknown title
        (([_c(fm, 2021, "arXiv:2108.07259")], _CATALOG), {}),              # wrong arXiv id
        (([_c(fm, 2021, "arXiv:2108.07258"), _c(gao, 2022, "arXiv:2210.10760")], _CATALOG), {}),
        (([_c(fm, 2018, "arXiv:2108.07258"), _c(fm, 2021, "arXiv:2108.07258")], _CATALOG), {}),  # same id twice: fine
        (([], _CATALOG), {}),
        ((_c(gao, 2022, "ICML"), _CATALOG), {}),                           # not a list: TypeError
    ]
    titles = [gao, fm, guo, dp, "A Paper Nobody Wrote", "Attention Is All You Need"]
    wheres = ["ICML", "NeurIPS 2019", "CCS", "arXiv:2210.10760", "arXiv:2108.07258", "arXiv:1802.07258",
              "arXiv:2210.10761 (ICML 2023)", ""]
    for _ in range(10):
        n = int(rng.integers(1, 5))
        cites = [_c(str(rng.choice(titles)), None if rng.random() < 0.2 else int(rng.integers(2015, 2025)),
                    str(rng.choice(wheres))) for _ in range(n)]
        cases.append(((cites, _CATALOG), {}))
    return cases


register(Exercise(
    key="23.audit_citations",
    title="audit a citation list for the classic errors",
    reference=reading.audit_citations,
    make_cases=_audit_cases,
    difficulty=2, importance="core", minutes=25,
))
