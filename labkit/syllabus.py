"""The course map: one row per lesson, in order.

The README's syllabus table and lesson 00's course map are both generated
from this list (``python -m labkit.syllabus`` prints the table); a test keeps
the README, the ``lessons/`` folder and this list in agreement.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Lesson:
    number: int
    slug: str
    title: str
    source: str     # slide of the course deck, or seed topic
    module: str     # labkit module that holds the lesson's code
    minutes: int
    datasets: tuple[str, ...] = ()  # real datasets (labkit.datasets) the lesson reads

    @property
    def name(self) -> str:
        return f"{self.number:02d}_{self.slug}"


LESSONS: list[Lesson] = [
    Lesson(0, "welcome", "Welcome: course map, environment doctor, how exercises work", "course guide", "labkit.basics", 30),
    Lesson(1, "introduction", "Introduction: never execute text; a default-deny action gate", "slide 1; seed 004", "labkit.gate", 60),
    Lesson(2, "why_alignment_matters", "Why alignment matters: specification gaming and Goodhart", "slide 2; seed 004", "labkit.goodhart", 60),
    Lesson(3, "key_challenges", "Key challenges: calibration, abstention, OOD detection", "slide 3", "labkit.calibration", 60),
    Lesson(4, "ethics", "Ethics made measurable: fairness metrics and their tensions", "slide 4", "labkit.fairness", 60),
    Lesson(5, "reward_modeling", "Reward modeling: Bradley-Terry and over-optimization", "slide 5", "labkit.reward", 90),
    Lesson(6, "inverse_rl", "Inverse RL: maximum-entropy IRL on a gridworld", "slide 6", "labkit.irl", 75),
    Lesson(7, "constrained_optimization", "Constrained optimization: KKT and Lagrangian CMDPs", "slide 7", "labkit.constrained", 60),
    Lesson(8, "interpretability", "Interpretability: attributions, SHAP, LIME, probes", "slide 8; seeds 002, 003", "labkit.interpret", 90),
    Lesson(9, "adversarial_robustness", "Adversarial robustness: FGSM, PGD, certified IBP", "slide 9; seed 003", "labkit.robustness", 75),
    Lesson(10, "multi_stakeholder_alignment", "Multi-stakeholder alignment: social choice", "slide 10", "labkit.social_choice", 60),
    Lesson(11, "continual_learning", "Continual learning: EWC against forgetting", "slide 11", "labkit.continual", 60),
    Lesson(12, "ethical_decision_making", "Ethical decision-making: MCDA and rank reversal", "slide 12", "labkit.mcda", 45),
    Lesson(13, "monitoring", "Monitoring: drift and anomaly detectors on a live stream", "slide 13; seeds 002, 003", "labkit.monitoring", 60),
    Lesson(14, "content_moderation", "Content moderation: normalisation, classifiers, PII", "slide 14; seed 004", "labkit.moderation", 75,
           ("presidio_synth", "hatecheck", "davidson_offensive", "xstest")),
    Lesson(15, "ethical_chatbot", "An ethical chatbot: a guarded tiny assistant", "slide 15; seed 002", "labkit.chatbot", 90,
           ("advbench", "xstest", "jailbreakbench_pair", "koala_test_set", "harmbench_val", "harmbench_test",
            "do_not_answer", "clinc_oos", "nq_open", "gsm8k", "mt_bench", "vicuna_bench", "arena_hard", "truthfulqa",
            "hh_rlhf_helpful", "coconot_contrast")),
    Lesson(16, "rlhf", "RLHF: reward models, PPO and DPO on the tiny assistant", "seeds 002, 004", "labkit.rlhf", 90,
           ("hh_rlhf_harmless",)),
    Lesson(17, "constitutional_ai", "Constitutional AI: critique and revision", "seeds 002, 003, 004", "labkit.constitutional", 60),
    Lesson(18, "red_teaming", "Red teaming: jailbreaks, injections, automated attacks", "seeds 002, 004", "labkit.redteam", 75),
    Lesson(19, "bias_in_language_models", "Bias in language models: probes and mitigation", "seed 002", "labkit.bias", 60,
           ("davidson_offensive", "hatecheck")),
    Lesson(20, "differential_privacy_and_federated_learning", "Differential privacy and federated learning", "seeds 002, 003", "labkit.privacy", 75),
    Lesson(21, "membership_inference_and_model_extraction", "Membership inference and model extraction", "seed 002", "labkit.leakage", 60),
    Lesson(22, "capstone_safety_evaluation", "Capstone: a safety evaluation of the tiny assistant", "seeds 003, 004", "labkit.capstone", 120,
           ("xstest", "advbench")),
    Lesson(23, "further_reading", "Further reading", "slide 16", "labkit.reading", 30),
]

LESSONS_DIR = Path(__file__).resolve().parents[1] / "lessons"

# Where the course is published. NOT KNOWN YET (the repository has no remote):
# set these two constants once, and the README's and the notebooks' Colab and
# Binder badges and each notebook's Colab set-up cell follow (make build).
REPOSITORY_URL = "https://github.com/YOUR-ORG/labkit"
REPOSITORY_BRANCH = "main"


def colab_url(lesson: Lesson, folder: str = "notebooks") -> str:
    """Open ``folder/<lesson>.ipynb`` of the published repository in Google Colab."""
    slug = REPOSITORY_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{slug}/blob/{REPOSITORY_BRANCH}/{folder}/{lesson.name}.ipynb"


def binder_url(lesson: Lesson, folder: str = "notebooks") -> str:
    """Open ``folder/<lesson>.ipynb`` in JupyterLab on mybinder.org (repo2docker builds the environment)."""
    slug = REPOSITORY_URL.removeprefix("https://github.com/")
    return f"https://mybinder.org/v2/gh/{slug}/{REPOSITORY_BRANCH}?urlpath=lab/tree/{folder}/{lesson.name}.ipynb"


def badges(lesson: Lesson, folder: str = "notebooks") -> str:
    """Markdown "Open in Colab" and "launch binder" badges for one lesson's notebook."""
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(lesson, folder)}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(lesson, folder)})")


def lesson_for_notebook(path) -> Lesson | None:
    """The lesson whose notebook (or solution) file is ``path``, if any."""
    stem = Path(path).stem
    return next((lesson for lesson in LESSONS if lesson.name == stem), None)


def available(lesson: Lesson) -> bool:
    """True when the lesson's source exists in ``lessons/``."""
    return (LESSONS_DIR / f"{lesson.name}.py").exists()


def markdown_table(status: bool = True, links: bool = True) -> str:
    """The syllabus as a Markdown table (number, title, source, module, minutes[, status]).

    ``links`` makes each available lesson's title a link to its notebook,
    relative to the repository root (the README); lesson 00, which lives in
    ``notebooks/``, shows the table without them.
    """
    head = "| # | Lesson | Slide or seed | labkit module | Minutes |" + (" Status |" if status else "")
    rows = [head, "|---|---|---|---|---|" + ("---|" if status else "")]
    for lesson in LESSONS:
        ok = available(lesson)
        link = f"[{lesson.title}](notebooks/{lesson.name}.ipynb)" if links and status and ok else lesson.title
        if links and status and ok:
            link += f" [![Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(lesson)})"
        module = f"`{lesson.module}`" if lesson.module.startswith("labkit") else lesson.module
        row = f"| {lesson.number:02d} | {link} | {lesson.source} | {module} | {lesson.minutes} |"
        rows.append(row + (f" {'available' if ok else 'planned'} |" if status else ""))
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
