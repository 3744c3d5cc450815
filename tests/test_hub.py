"""Tests for tfinverse.hub: export / load round trips, foreign SavedModels, .keras, .pth."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfinverse
from tfinverse import hub
from tfinverse.models.generator import KerasGenerator

LATENT_DIM = 6


def tiny_keras_network(seed=0, activation="tanh"):
    """z [n, 6] -> dense -> batch norm -> [n, 4, 4, 2] -> nearest x2 -> conv -> [n, 8, 8, 3]."""
    keras.utils.set_random_seed(seed)
    z = keras.Input((LATENT_DIM,))
    h = keras.layers.Dense(4 * 4 * 2)(z)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Reshape((4, 4, 2))(h)
    h = keras.layers.UpSampling2D(2)(h)
    x = keras.layers.Conv2D(3, 3, padding="same", activation=activation)(h)
    return keras.Model(z, x)


def perturb_batch_norm(network, seed):
    # non-trivial moving statistics, so inference mode differs from batch statistics
    rng = np.random.default_rng(seed)
    bn = next(layer for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization))
    bn.moving_mean.assign(rng.normal(size=bn.moving_mean.shape).astype(np.float32))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, size=bn.moving_variance.shape).astype(np.float32))


@pytest.fixture(scope="module")
def tiny_generator():
    network = tiny_keras_network(seed=1)
    perturb_batch_norm(network, seed=2)
    return KerasGenerator(network, LATENT_DIM, "uniform", output_range=(-1.0, 1.0))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_generator):
    path = str(tmp_path_factory.mktemp("export") / "dcgan")
    metadata = hub.export_generator(
        tiny_generator, path, extra_metadata={"command": "train.py --epochs 3", "data": ["celeba", 64]}
    )
    return path, metadata


def latents(n=5, seed=3):
    return np.random.default_rng(seed).uniform(-1, 1, (n, LATENT_DIM)).astype(np.float32)


def test_export_load_round_trip_gives_identical_images(exported, tiny_generator):
    path, _ = exported
    loaded = hub.load_generator(path)
    assert isinstance(loaded, hub.SavedModelGenerator)
    z = latents()
    np.testing.assert_allclose(loaded(z).numpy(), tiny_generator(z).numpy(), atol=1e-6)
    np.testing.assert_allclose(loaded.native(z).numpy(), tiny_generator.native(z).numpy(), atol=1e-6)
    # the [0, 1] mapping is (x + 1) / 2 of the raw Keras model in inference mode
    raw = tiny_generator.network(z, training=False).numpy()
    np.testing.assert_allclose(loaded(z).numpy(), np.clip((raw + 1) / 2, 0, 1), atol=1e-6)
    assert loaded.output_shape == (8, 8, 3)
    assert loaded.latent_dim == LATENT_DIM and loaded.latent_distribution == "uniform"
    assert loaded.output_range == (-1.0, 1.0)


def test_metadata_round_trip(exported):
    path, written = exported
    metadata = hub.read_generator_metadata(path)
    assert metadata == written
    assert metadata["latent_dim"] == LATENT_DIM
    assert metadata["latent_distribution"] == "uniform"
    assert metadata["resolution"] == [8, 8] and metadata["channels"] == 3
    assert metadata["value_range"] == [0.0, 1.0]
    assert metadata["native_output_range"] == [-1.0, 1.0]
    assert metadata["tfinverse_version"] == tfinverse.__version__
    assert metadata["extra"] == {"command": "train.py --epochs 3", "data": ["celeba", 64]}
    with open(os.path.join(path, "assets", hub.METADATA_FILENAME)) as f:
        assert json.load(f) == written
    assert hub.load_generator(path).metadata == written


def test_export_is_a_tf_hub_style_savedmodel(exported, tiny_generator):
    path, _ = exported
    module = tf.saved_model.load(path)  # plain TensorFlow, no tfinverse, no tensorflow_hub
    default = module.signatures["default"]
    spec = default.structured_input_signature[1]["z"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, LATENT_DIM]
    assert default.structured_outputs["default"].shape.as_list() == [None, 8, 8, 3]
    z = latents()
    images = default(z=tf.constant(z))["default"].numpy()
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_allclose(images, tiny_generator(z).numpy(), atol=1e-6)
    np.testing.assert_allclose(module(tf.constant(z)).numpy(), images, atol=1e-6)
    # 6 trainable (dense and conv kernels and biases, batch-norm gamma and beta) + 2 statistics
    assert len(module.trainable_variables) == len(tiny_generator.trainable_variables) == 6
    assert len(module.variables) == len(tiny_generator.variables) == 8


def test_existing_path_is_refused_unless_overwrite_and_no_temp_dirs_remain(tmp_path, tiny_generator):
    path = tmp_path / "gen"
    hub.export_generator(tiny_generator, str(path))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        hub.export_generator(tiny_generator, str(path))
    other = KerasGenerator(tiny_keras_network(seed=7), LATENT_DIM, "normal", output_range=(-1.0, 1.0))
    hub.export_generator(other, str(path), overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["gen"]
    reloaded = hub.load_generator(str(path))
    assert reloaded.latent_distribution == "normal"
    z = latents()
    np.testing.assert_allclose(reloaded(z).numpy(), other(z).numpy(), atol=1e-6)


def test_variables_are_trainable_and_copies_are_independent(exported, tiny_generator):
    path, _ = exported
    loaded = hub.load_generator(path)
    assert len(loaded.trainable_variables) == len(tiny_generator.trainable_variables) == 6
    z = tf.constant(latents())
    before = loaded(z).numpy()
    snapshot = loaded.copy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((loaded.native(z) - 0.3) ** 2)
    gradients = tape.gradient(loss, loaded.trainable_variables)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)
    keras.optimizers.SGD(0.05).apply_gradients(zip(gradients, loaded.trainable_variables))
    after = loaded(z).numpy()
    assert np.abs(after - before).max() > 1e-3  # the update reached the loaded module
    np.testing.assert_allclose(snapshot(z).numpy(), before, atol=1e-6)  # earlier copy unchanged
    current = loaded.copy()
    np.testing.assert_allclose(current(z).numpy(), after, atol=1e-6)  # copy carries current values
    for variable in current.trainable_variables:
        variable.assign(tf.zeros_like(variable))
    np.testing.assert_allclose(loaded(z).numpy(), after, atol=1e-6)
    frozen = hub.load_generator(path, trainable=False)
    assert frozen.trainable_variables == [] and len(frozen.variables) == len(loaded.variables)


def test_saved_model_layer_sits_in_a_keras3_model_and_trains(exported):
    path, _ = exported
    layer = hub.SavedModelLayer(path, signature="native")
    z_in = keras.Input((LATENT_DIM,))
    images = keras.layers.Rescaling(0.5, offset=0.5)(layer(z_in))
    model = keras.Model(z_in, images)
    assert model.output_shape == (None, 8, 8, 3)
    assert len(model.trainable_variables) == 6
    z = latents(4)
    reference = hub.load_generator(path)
    np.testing.assert_allclose(model(z).numpy(), reference(z).numpy(), atol=1e-6)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    start = model(z).numpy()
    model.fit(z, np.full((4, 8, 8, 3), 0.5, np.float32), epochs=1, verbose=0)
    assert np.abs(model(z).numpy() - start).max() > 1e-4


class TanhModule(tf.Module):
    """A foreign TF2 generator: images tanh(z W + b) reshaped to [n, 4, 4, 1], range [-1, 1]."""

    def __init__(self, seed):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w = tf.Variable(rng.normal(0, 1.5, (5, 16)).astype(np.float32), name="w")
        self.b = tf.Variable(rng.normal(0, 0.5, (16,)).astype(np.float32), name="b")

    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32)])
    def generate(self, latent):
        return {"images": tf.reshape(tf.tanh(latent @ self.w + self.b), [-1, 4, 4, 1])}


def numpy_tanh_images(module, z):
    return np.tanh(z @ module.w.numpy() + module.b.numpy()).reshape(-1, 4, 4, 1)


def test_foreign_tf2_saved_model_loads_with_range_detected(tmp_path):
    module = TanhModule(seed=4)
    path = str(tmp_path / "foreign")
    tf.saved_model.save(module, path, signatures={"default": module.generate})
    g = hub.load_generator(path)
    assert g.latent_dim == 5 and g.latent_distribution == "normal"
    assert g.output_range == (-1.0, 1.0)
    assert g.output_shape == (4, 4, 1)
    assert g.layer.source_format == "saved_model"
    z = np.random.default_rng(5).normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_allclose(g(z).numpy(), (numpy_tanh_images(module, z) + 1) / 2, atol=1e-5)
    assert len(g.trainable_variables) == 2
    explicit = hub.load_generator(path, output_range=(0.0, 1.0), latent_distribution="uniform")
    assert explicit.output_range == (0.0, 1.0) and explicit.latent_distribution == "uniform"


def write_tf1_hub_module(path, weights):
    """A TF1-Hub-format module built with reference variables: tags [] and ['train']."""
    graph = tf.Graph()
    with graph.as_default():
        z = tf.compat.v1.placeholder(tf.float32, [None, weights.shape[0]], name="latent")
        w = tf.compat.v1.get_variable("generator/w", initializer=tf.constant(weights), use_resource=False)
        scale = tf.compat.v1.get_variable(
            "generator/scale", initializer=tf.constant(2.0), trainable=False, use_resource=False
        )
        out = tf.reshape(scale * tf.tanh(tf.matmul(z, w)), [-1, 2, 2, 3], name="images")
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(path)
            signature = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
                inputs={"default": tf.compat.v1.saved_model.utils.build_tensor_info(z)},
                outputs={"default": tf.compat.v1.saved_model.utils.build_tensor_info(out)},
            )
            builder.add_meta_graph_and_variables(session, [], signature_def_map={"default": signature})
            builder.add_meta_graph(["train"], signature_def_map={"default": signature})
            builder.save()
    with open(os.path.join(path, "tfhub_module.pb"), "wb") as f:
        f.write(b"\x08\x03")  # ModuleDef{format: 3}, the TF1-Hub marker file


def test_tf1_hub_module_with_reference_variables_loads_and_fine_tunes(tmp_path):
    weights = np.random.default_rng(6).normal(0, 0.3, (4, 12)).astype(np.float32)
    path = str(tmp_path / "tf1_hub")
    write_tf1_hub_module(path, weights)
    g = hub.load_generator(path)  # values 2 tanh(.) in (-2, 2): mostly in [-1, 1]
    assert g.layer.source_format == "tf1_lifted"
    assert g.latent_dim == 4 and g.output_shape == (2, 2, 3) and g.output_range == (-1.0, 1.0)
    z = np.random.default_rng(7).normal(size=(3, 4)).astype(np.float32)
    expected = 2 * np.tanh(z @ weights).reshape(-1, 2, 2, 3)
    np.testing.assert_allclose(g.native(z).numpy(), expected, atol=1e-5)
    frozen_signature = tf.saved_model.load(path, tags=[]).signatures["default"]
    np.testing.assert_allclose(g.native(z).numpy(), frozen_signature(default=tf.constant(z))["default"].numpy(), atol=1e-6)
    # only w is trainable (scale was created with trainable=False)
    assert [tuple(v.shape) for v in g.trainable_variables] == [(4, 12)]
    assert len(g.variables) == 2
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(g.native(z))
    (gradient,) = tape.gradient(loss, g.trainable_variables)
    t = np.tanh(z @ weights)
    np.testing.assert_allclose(gradient.numpy(), z.T @ (2 * (1 - t**2)), rtol=1e-4, atol=1e-5)


def test_keras_file_loads(tmp_path):
    network = tiny_keras_network(seed=8, activation="sigmoid")
    perturb_batch_norm(network, seed=9)
    path = str(tmp_path / "gen.keras")
    network.save(path)
    g = hub.load_generator(path)
    assert isinstance(g, KerasGenerator)
    assert g.latent_dim == LATENT_DIM and g.output_range == (0.0, 1.0) and g.output_shape == (8, 8, 3)
    z = latents()
    np.testing.assert_allclose(g(z).numpy(), network(z, training=False).numpy(), atol=1e-6)
    tanh_path = str(tmp_path / "tanh.keras")
    tiny_keras_network(seed=10).save(tanh_path)
    assert hub.load_generator(tanh_path).output_range == (-1.0, 1.0)


def test_pth_state_dict_becomes_a_pggan_generator(tmp_path):
    from test_torch_pickle import Storage, contiguous, write_zip_checkpoint

    from tfinverse.models.pggan import PGGANGenerator

    settings = dict(resolution=8, latent_dim=8, channels=3, fmap_base=16, fmap_max=8)
    spec = PGGANGenerator.from_original_layout(**settings).original_state_dict_spec()
    rng = np.random.default_rng(11)
    arrays = {key: rng.normal(0, 0.5, shape).astype(np.float32) for key, shape in spec.items()}
    state = {key: contiguous(Storage(str(i), a), a.shape) for i, (key, a) in enumerate(arrays.items())}
    path = str(tmp_path / "pggan.pth")
    write_zip_checkpoint(path, {"state_dict": state})
    g = hub.load_generator(path)
    assert isinstance(g, PGGANGenerator)
    assert g.latent_dim == 8 and g.output_shape == (8, 8, 3) and g.latent_distribution == "normal"
    np.testing.assert_array_equal(
        g.network.features[0].conv.kernel.numpy(), np.transpose(arrays["features.0.conv.weight"], (2, 3, 1, 0))
    )
    reference = PGGANGenerator.from_original_layout(**settings)
    reference.load_original_state_dict(arrays)
    z = rng.normal(size=(2, 8)).astype(np.float32)
    np.testing.assert_allclose(g(z).numpy(), reference(z).numpy(), atol=1e-6)


def test_guess_output_range_rules():
    rng = np.random.default_rng(12)
    assert hub.guess_output_range(rng.uniform(0, 1, 1000)) == (0.0, 1.0)
    assert hub.guess_output_range(np.tanh(rng.normal(0, 2, 1000))) == (-1.0, 1.0)
    assert hub.guess_output_range(rng.uniform(0, 255, 1000)) == (0.0, 255.0)
    assert hub.guess_output_range(rng.integers(0, 256, 100, dtype=np.uint8)) == (0.0, 255.0)
    # a handful of outliers in an otherwise [0, 1] output does not flip the guess
    assert hub.guess_output_range(np.concatenate([rng.uniform(0, 1, 1000), [-0.8, 3.0]])) == (0.0, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        hub.guess_output_range(np.array([0.1, np.nan]))


class IntegerInputModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def generate(self, labels):
        return {"images": tf.zeros([tf.shape(labels)[0], 2, 2, 1])}


def test_clear_errors(tmp_path, tiny_generator, exported):
    with pytest.raises(FileNotFoundError, match="no generator at"):
        hub.load_generator(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a SavedModel directory"):
        hub.load_generator(str(tmp_path / "empty"))
    odd = tmp_path / "weights.npz"
    odd.write_bytes(b"")
    with pytest.raises(ValueError, match=r"expected a SavedModel directory, a \.keras file"):
        hub.load_generator(str(odd))

    int_path = str(tmp_path / "int_input")
    module = IntegerInputModule()
    tf.saved_model.save(module, int_path, signatures={"default": module.generate})
    with pytest.raises(ValueError, match="no float input"):
        hub.load_generator(int_path)
    with pytest.raises(ValueError, match=r"no signature 'other'; its signatures are \['default'\]"):
        hub.SavedModelLayer(int_path, signature="other")

    path, _ = exported
    with pytest.raises(ValueError, match="latent_dim=7 conflicts"):
        hub.load_generator(path, latent_dim=7)
    with pytest.raises(ValueError, match="latent_distribution='normal' conflicts"):
        hub.load_generator(path, latent_distribution="normal")
    with pytest.raises(ValueError, match=r"z must have shape \[n, 6\]"):
        hub.load_generator(path)(np.zeros((2, 3), np.float32))

    with pytest.raises(ValueError, match="needs latent_distribution"):
        hub.export_generator(tiny_keras_network(), str(tmp_path / "plain"))
    with pytest.raises(ValueError, match="JSON-serialisable"):
        hub.export_generator(tiny_generator, str(tmp_path / "bad_meta"), extra_metadata={"f": object()})
    assert not (tmp_path / "bad_meta").exists()
    with pytest.raises(TypeError, match="Generator or a keras.Model"):
        hub.export_generator(lambda z: z, str(tmp_path / "fn"))
