"""Classifiers: wrapper, adapters, smoothed-ReLU surrogate, safe weights, zoo."""

from .smooth import smooth_relu, smooth_relu_fn
from .wrapper import Classifier, check_images
from .zoo import ARCHITECTURES, MODELS, create_model

__all__ = ["ARCHITECTURES", "MODELS", "Classifier", "check_images", "create_model", "smooth_relu", "smooth_relu_fn"]
