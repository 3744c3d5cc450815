"""The index of the systems tfinverse reproduces: one module per system with its settings,
presets and schedules.

* :mod:`tfinverse.tasks.igan`: igan's task names; :mod:`tfinverse.tasks.igan_tasks` its
  seven tasks (superimposed-image separation, MNIST denoising, CAPTCHA cleaning, toy 2-D
  mapping, audio CAPTCHA separation, deraining) and :mod:`tfinverse.tasks.audio` the STFT
  front end of the audio task.
* :mod:`tfinverse.tasks.iagan`: IAGAN's inversion tasks, methods and the BEGAN/PGGAN
  training constants.
* :mod:`tfinverse.tasks.lvr`: LVR's clipping rules and noise levels, the DCGAN prior's
  training constants.
* :mod:`tfinverse.tasks.ambient`: Ambient VAE-GAN's losses, optimiser schedule, forward
  models, presets and test protocol.
* :mod:`tfinverse.tasks.lir`: LIR's loss weights, update order settings, noise presets and
  the low-dose CT setup.

The settings modules (``igan``, ``iagan``, ``lvr``, ``ambient``, ``lir``) import nothing heavy, so scripts read
them before TensorFlow loads; the names below that need TensorFlow load on first use.
"""

from tfinverse.utils.lazy import lazy_attributes

from tfinverse.tasks.igan import TASK_NAMES

# name -> module that defines it, imported on first use (igan_tasks needs TensorFlow).
_LAZY = {
    name: "tfinverse.tasks.igan_tasks"
    for name in (
        "IganTask",
        "data_sources",
        "energy_distance",
        "evaluate",
        "evaluation_batches",
        "get_task",
        "plot_toy_mapping",
        "training_batches",
    )
}

__all__ = ["TASK_NAMES", *_LAZY]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, [*__all__, "igan", "iagan", "lvr", "ambient", "lir", "igan_tasks", "audio"])
