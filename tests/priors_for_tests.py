"""Small priors shared by the inversion tests: a non-linear MLP and an exactly linear one."""

import keras
import numpy as np

from tfinverse.models import KerasGenerator

SHAPE = (8, 8, 1)


def mlp_generator(latent_dim=4, hidden=32, seed=0):
    """A small non-linear prior whose images vary strongly with z (tanh output)."""
    init = keras.initializers.GlorotUniform
    network = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(hidden, activation="tanh", kernel_initializer=init(seed=seed)),
            keras.layers.Dense(int(np.prod(SHAPE)), activation="tanh", kernel_initializer=init(seed=seed + 1)),
            keras.layers.Reshape(SHAPE),
        ]
    )
    return KerasGenerator(network, latent_dim, "uniform")


def linear_generator(latent_dim=4, seed=0):
    """``G(z) = W z + b`` exactly: native range (0, 1) and no clipping make the mapping the identity."""
    network = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(
                int(np.prod(SHAPE)),
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=seed),
                bias_initializer=keras.initializers.RandomUniform(0.2, 0.8, seed=seed + 1),
            ),
            keras.layers.Reshape(SHAPE),
        ]
    )
    return KerasGenerator(network, latent_dim, "normal", output_range=(0.0, 1.0), clip_output=False)
