"""labkit: corrected, device-agnostic reference implementations for the course.

The layout mirrors the syllabus: lesson N imports the module named in the
README's syllabus table (``labkit.reward`` for lesson 05, ``labkit.robustness``
for lesson 09, ...). Heavy modules are imported on first use, so ``import
labkit`` stays fast.

The modules form three layers, and imports only point down them (or, between
lesson modules, to an earlier lesson's module); ``tests/test_layers.py``
enforces it:

1. **Infrastructure**: argument checks (``validation``), devices, seeds and
   progress bars (``core``), widgets (``ui``), verified datasets
   (``datasets``), the course map (``syllabus``), checked exercises
   (``exercises``), bit-identical numerics (``numerics``), the interval every
   rate is reported with (``intervals``) and the reading list (``reading``).
2. **Substrates**, the shared model organisms several lessons build on: the
   gridworld MDPs (``gridworld``), the tiny language model and everything
   around it (the package ``lm``: world, tokenizer, TinyGPT, training,
   replies, evaluation harness, model cache), and the small classifier
   toolkit for scikit-learn's digits (``classifiers``).
3. **Lesson modules**, one per lesson topic, flat (``from labkit import
   reward``): ``basics`` (00) to ``chatbot`` (15), and the modules of the
   lessons to come.

On top sit the **entry points**: the ``labkit`` command (``cli``) and the
grader it runs (``grading``); they may use every layer and nothing imports them.
"""
from labkit.core import get_device, seed_everything, setup, progress, progress_enabled

__version__ = "0.1.0"

__all__ = ["get_device", "seed_everything", "setup", "progress", "progress_enabled", "__version__"]
