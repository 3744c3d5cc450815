"""Task definitions: what data a method trains and is evaluated on, and how it is scored.

* :mod:`tfinverse.tasks.igan_tasks`: the seven tasks of the parameter-estimation GAN
  (igan): superimposed-image separation, MNIST denoising, CAPTCHA cleaning, toy 2-D
  mapping, audio CAPTCHA separation and deraining.
* :mod:`tfinverse.tasks.audio`: the STFT front end of the audio task (librosa, imported
  only when called).
"""

from tfinverse.tasks.igan_tasks import (
    TASK_NAMES,
    IganTask,
    data_sources,
    energy_distance,
    evaluate,
    evaluation_batches,
    get_task,
    plot_toy_mapping,
    training_batches,
)

__all__ = [
    "TASK_NAMES",
    "IganTask",
    "data_sources",
    "energy_distance",
    "evaluate",
    "evaluation_batches",
    "get_task",
    "plot_toy_mapping",
    "training_batches",
]
