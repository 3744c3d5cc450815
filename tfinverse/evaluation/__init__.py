"""Evaluation: sample quality of generative priors, and the runners of the papers' experiments.

* :mod:`~tfinverse.evaluation.frechet`: the Frechet distance between Gaussians and between
  two sets of feature vectors (the closed form behind FID).
* :mod:`~tfinverse.evaluation.classifier`: a small digit classifier trained on the
  MNIST-5000 training split, whose penultimate layer is the feature space of
  :func:`frechet_digit_distance`::

      from tfinverse.evaluation import FeatureExtractor, frechet_digit_distance
      extractor = FeatureExtractor.default()              # tfinverse/assets/mnist_classifier.keras
      score = frechet_digit_distance(samples, test_digits, extractor)

* :mod:`~tfinverse.evaluation.iagan`: runs the IAGAN paper's methods on one inversion task
  and scores them (the engine of the IAGAN experiment scripts).
* :mod:`~tfinverse.evaluation.lir`: LIR's held-out test set and its scores in the
  original's conventions (``deploy_lir.py``, and ``train_lir.py --eval-every``).
* :mod:`~tfinverse.evaluation.curves`: training curves read back from a run's TensorBoard
  scalars, smoothed and plotted (``scripts/plot_curves.py``).

Names load on first use, so importing this package costs nothing until one is used.
"""

from tfinverse.utils.lazy import lazy_attributes

_LAZY = {
    **{name: "tfinverse.evaluation.classifier" for name in (
        "DEFAULT_CLASSIFIER_PATH", "FEATURE_LAYER", "LOGITS_LAYER", "FeatureExtractor", "build_digit_classifier",
        "frechet_digit_distance", "load_labelled_mnist5k", "mnist5k_labels", "train_digit_classifier",
    )},
    **{name: "tfinverse.evaluation.frechet" for name in (
        "feature_statistics", "frechet_distance", "frechet_distance_of",
    )},
    **{name: "tfinverse.evaluation.curves" for name in ("read_scalars", "smooth", "plot_curves", "curves_table")},
}

__all__ = [
    # Frechet distance
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_of",
    # digit classifier features
    "DEFAULT_CLASSIFIER_PATH",
    "FEATURE_LAYER",
    "LOGITS_LAYER",
    "FeatureExtractor",
    "build_digit_classifier",
    "train_digit_classifier",
    "frechet_digit_distance",
    "load_labelled_mnist5k",
    "mnist5k_labels",
    # training curves
    "read_scalars",
    "smooth",
    "plot_curves",
    "curves_table",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, [*__all__, "classifier", "curves", "frechet", "iagan"])
