"""labkit: corrected, device-agnostic reference implementations for the course.

The layout mirrors the syllabus: lesson N imports the module named in the
README's syllabus table (``labkit.reward`` for lesson 05, ``labkit.robustness``
for lesson 09, ...). Heavy modules are imported on first use, so ``import
labkit`` stays fast.
"""
from labkit.core import get_device, seed_everything, setup, progress, progress_enabled

__version__ = "0.1.0"

__all__ = ["get_device", "seed_everything", "setup", "progress", "progress_enabled", "__version__"]
