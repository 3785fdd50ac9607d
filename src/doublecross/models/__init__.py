"""Classifiers: wrapper, adapters and automatic feature access, smoothed activations, safe weights, zoo."""

from .adapters import Adapter, register_adapter, unregister_adapter
from .features import FeatureAccessError, FeatureSplit
from .normalisation import find_input_normalisation, normalisation_check
from .smooth import DoubleBackwardError, exact_double_backward, smooth_activations, smooth_relu, smooth_relu_fn
from .wrapper import Classifier, check_images
from .zoo import ARCHITECTURES, MODELS, create_model

__all__ = [
    "ARCHITECTURES",
    "MODELS",
    "Adapter",
    "Classifier",
    "DoubleBackwardError",
    "FeatureAccessError",
    "FeatureSplit",
    "check_images",
    "create_model",
    "exact_double_backward",
    "find_input_normalisation",
    "normalisation_check",
    "register_adapter",
    "smooth_activations",
    "smooth_relu",
    "smooth_relu_fn",
    "unregister_adapter",
]
