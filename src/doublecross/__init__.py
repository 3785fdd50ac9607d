"""doublecross: ADV² -- adversarial inputs that fool a classifier and its interpreter at once.

Zhang et al., "Interpretable Deep Learning under Fire", USENIX Security 2020.
"""

__version__ = "0.1.0"

from .models import MODELS, Classifier, create_model, smooth_relu  # noqa: E402
from .registry import Registry  # noqa: E402

__all__ = ["MODELS", "Classifier", "Registry", "__version__", "create_model", "smooth_relu"]
