"""igan ("Adversarial Training for Solving Inverse Problems"): its task names.

The task definitions themselves (data, degradations, scoring) are in
:mod:`tfinverse.tasks.igan_tasks`; this module imports nothing heavy, so scripts can offer
the names as flag choices before TensorFlow is loaded.
"""

__all__ = ["TASK_NAMES"]

#: The seven tasks of the original, in the order of its README.
TASK_NAMES = (
    "unmixing_mnist_cifar",
    "unmixing_mnist_mnist",
    "denoising",
    "captcha",
    "toy2d",
    "audio_captcha",
    "derain",
)
