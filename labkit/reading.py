"""Lesson 23: the course's reading list as data.

Each entry names the lessons it supports, so the list can be filtered by topic
and drawn as a timeline. Slide 16 of the deck cites three papers; the lesson
audits that list (one title does not match a paper we can identify) and
extends it with the primary sources behind every lesson.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt

from labkit.ui import dropdown, interactive_figure
from labkit.validation import ensure_choice


@dataclass(frozen=True)
class Reference:
    authors: str
    year: int
    title: str
    where: str          # venue or arXiv identifier
    topic: str
    lessons: tuple[int, ...]


READING: list[Reference] = [
    # The deck's own list (slide 16), as far as it checks out.
    Reference("Bommasani et al.", 2021, "On the Opportunities and Risks of Foundation Models", "arXiv:2108.07258", "overview", (1, 2)),
    Reference("Amodei et al.", 2016, "Concrete Problems in AI Safety", "arXiv:1606.06565", "overview", (1, 2, 3)),
    # Scalable oversight, replacing the deck's unidentified third entry.
    Reference("Irving, Christiano, Amodei", 2018, "AI Safety via Debate", "arXiv:1805.00899", "oversight", (17, 22)),
    Reference("Christiano, Shlegeris, Amodei", 2018, "Supervising Strong Learners by Amplifying Weak Experts", "arXiv:1810.08575", "oversight", (17,)),
    Reference("Leike et al.", 2018, "Scalable Agent Alignment via Reward Modeling: a Research Direction", "arXiv:1811.07871", "oversight", (5, 16)),
    Reference("Bowman et al.", 2022, "Measuring Progress on Scalable Oversight for Large Language Models", "arXiv:2211.03540", "oversight", (22,)),
    # Preferences, reward models and RLHF.
    Reference("Christiano et al.", 2017, "Deep Reinforcement Learning from Human Preferences", "NeurIPS", "preferences", (5, 16)),
    Reference("Ouyang et al.", 2022, "Training Language Models to Follow Instructions with Human Feedback", "NeurIPS", "preferences", (5, 16)),
    Reference("Gao, Schulman, Hilton", 2023, "Scaling Laws for Reward Model Overoptimization", "ICML", "preferences", (5, 16)),
    Reference("Rafailov et al.", 2023, "Direct Preference Optimization", "NeurIPS", "preferences", (16,)),
    Reference("Bai et al.", 2022, "Constitutional AI: Harmlessness from AI Feedback", "arXiv:2212.08073", "preferences", (17,)),
    Reference("Ziebart et al.", 2008, "Maximum Entropy Inverse Reinforcement Learning", "AAAI", "preferences", (6,)),
    # Specification, robustness and uncertainty.
    Reference("Krakovna et al.", 2020, "Specification Gaming: the Flip Side of AI Ingenuity", "DeepMind blog", "specification", (2,)),
    Reference("Guo et al.", 2017, "On Calibration of Modern Neural Networks", "ICML", "robustness", (3,)),
    Reference("Hendrycks, Gimpel", 2017, "A Baseline for Detecting Misclassified and Out-of-Distribution Examples", "ICLR", "robustness", (3,)),
    Reference("Madry et al.", 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks", "ICLR", "robustness", (9,)),
    Reference("Gowal et al.", 2018, "On the Effectiveness of Interval Bound Propagation", "arXiv:1810.12715", "robustness", (9,)),
    Reference("Kirkpatrick et al.", 2017, "Overcoming Catastrophic Forgetting in Neural Networks", "PNAS", "robustness", (11,)),
    Reference("Altman", 1999, "Constrained Markov Decision Processes", "Chapman & Hall", "specification", (7,)),
    # Interpretability.
    Reference("Sundararajan, Taly, Yan", 2017, "Axiomatic Attribution for Deep Networks", "ICML", "interpretability", (8,)),
    Reference("Lundberg, Lee", 2017, "A Unified Approach to Interpreting Model Predictions", "NeurIPS", "interpretability", (8,)),
    Reference("Ribeiro, Singh, Guestrin", 2016, "\"Why Should I Trust You?\" Explaining the Predictions of Any Classifier", "KDD", "interpretability", (8,)),
    Reference("Adebayo et al.", 2018, "Sanity Checks for Saliency Maps", "NeurIPS", "interpretability", (8,)),
    # Fairness, values and social choice.
    Reference("Kleinberg, Mullainathan, Raghavan", 2017, "Inherent Trade-Offs in the Fair Determination of Risk Scores", "ITCS", "fairness", (4, 19)),
    Reference("Chouldechova", 2017, "Fair Prediction with Disparate Impact", "Big Data", "fairness", (4, 19)),
    Reference("Bakker et al.", 2022, "Fine-Tuning Language Models to Find Agreement among Humans with Diverse Preferences", "NeurIPS", "fairness", (10,)),
    # Misuse, attacks and privacy.
    Reference("Zou et al.", 2023, "Universal and Transferable Adversarial Attacks on Aligned Language Models", "arXiv:2307.15043", "misuse", (15, 18)),
    Reference("Perez et al.", 2022, "Red Teaming Language Models with Language Models", "EMNLP", "misuse", (18,)),
    Reference("Röttger et al.", 2024, "XSTest: Identifying Exaggerated Safety Behaviours in LLMs", "NAACL", "misuse", (15, 22)),
    Reference("Abadi et al.", 2016, "Deep Learning with Differential Privacy", "CCS", "privacy", (20,)),
    Reference("Shokri et al.", 2017, "Membership Inference Attacks against Machine Learning Models", "IEEE S&P", "privacy", (21,)),
    Reference("Carlini et al.", 2021, "Extracting Training Data from Large Language Models", "USENIX Security", "privacy", (21,)),
    Reference("Tramèr et al.", 2016, "Stealing Machine Learning Models via Prediction APIs", "USENIX Security", "privacy", (21,)),
    # Monitoring and deployment.
    Reference("Page", 1954, "Continuous Inspection Schemes", "Biometrika", "monitoring", (13,)),
    Reference("Mitchell et al.", 2019, "Model Cards for Model Reporting", "FAT*", "monitoring", (4, 22)),
]

TOPICS = sorted({r.topic for r in READING})

# Slide 16 as printed in the deck, with what a reader finds when checking it.
SLIDE_16_AUDIT = [
    ("On the Opportunities and Risks of Foundation Models", "arXiv:2108.07258", "matches (Bommasani et al. 2021)"),
    ("Concrete Problems in AI Safety", "arXiv:1606.06565", "matches (Amodei et al. 2016)"),
    ("Scalable Oversight of AI Systems via Selective Delegation", "arXiv:1802.07258",
     "we could not identify a paper with this title; treat it as unverified and read the oversight entries instead"),
]


def references(topic: str = "all") -> list[Reference]:
    """References for ``topic`` (one of :data:`TOPICS` or ``"all"``), oldest first."""
    ensure_choice("topic", topic, ["all", *TOPICS])
    chosen = READING if topic == "all" else [r for r in READING if r.topic == topic]
    return sorted(chosen, key=lambda r: (r.year, r.authors))


def plot_timeline(topic: str = "all") -> plt.Figure:
    """Every reference as a dot by year and topic; the selected topic highlighted."""
    ensure_choice("topic", topic, ["all", *TOPICS])
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for row, name in enumerate(TOPICS):
        years = [r.year for r in READING if r.topic == name]
        on = topic in ("all", name)
        ax.scatter(years, [row] * len(years), s=60 if on else 25, alpha=1.0 if on else 0.25,
                   color=f"C{row % 10}", zorder=3)
    ax.set_yticks(range(len(TOPICS)), TOPICS)
    ax.set_xlabel("year")
    ax.grid(axis="x", alpha=0.3)
    shown = len(references(topic))
    ax.set_title(f"{'all topics' if topic == 'all' else topic}: {shown} reference{'s' if shown != 1 else ''}")
    fig.tight_layout()
    return fig


def timeline_widget():
    """Lesson 23's widget: a topic of :data:`TOPICS` (or all) redrawing :func:`plot_timeline`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing every topic.
    """
    return interactive_figure(plot_timeline, topic=dropdown("topic", ["all", *TOPICS]))


__all__ = ["Reference", "READING", "TOPICS", "SLIDE_16_AUDIT", "references", "plot_timeline", "timeline_widget"]
