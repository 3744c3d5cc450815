"""Exporting generators as SavedModels and loading pretrained generators from files.

:func:`export_generator` writes a TF2 SavedModel in the TF-Hub style: a ``default`` signature
from ``z`` (float32 ``[None, latent_dim]``) to ``default`` images (float32
``[None, H, W, C]`` in ``[0, 1]``), a ``native`` signature with the network's own output
range, ``obj(z)``, ``obj.variables`` / ``obj.trainable_variables``, and the description of
the generator in ``assets/tfinverse_generator.json`` (latent dimension and distribution,
resolution, channels, value ranges, versions, and a free-form ``extra`` dict such as the
training command). Nothing else is needed to load it back, and tensorflow_hub is never
required.

:func:`load_generator` turns a file into a :class:`~tfinverse.models.generator.Generator`:

* a SavedModel written by :func:`export_generator` (the description is read back);
* any other TF2 SavedModel, or a TF1 SavedModel / TF1-Hub-format module directory (such as
  ``progan-128``), exposing a signature from one float latent input to images: the
  signature is found, ``latent_dim`` is read from its input spec and, unless given, the
  output range is guessed from samples (:func:`guess_output_range`);
* a ``.keras`` file (``keras.saving.load_model``), wrapped in a
  :class:`~tfinverse.models.generator.KerasGenerator`;
* a PyTorch ``.pth`` state_dict of the IAGAN PGGAN generator, read without torch by
  :mod:`tfinverse.utils.torch_pickle` into a
  :class:`~tfinverse.models.pggan.PGGANGenerator` (original layout).

Image-to-image models (Ambient VAE-GAN's enhancer ``y -> x``): :func:`export_image_model` writes
a ``default`` signature from ``y`` (float32 ``[None, H, W, C]``) to ``default`` images with
``assets/tfinverse_image_model.json``; :func:`load_image_model` returns a function ``y -> images``.

SavedModels sit behind :class:`SavedModelLayer`, a Keras 3 layer (``hub.KerasLayer`` cannot
be used in Keras 3 models). Its variables are the SavedModel's own ``tf.Variable`` objects,
wrapped as Keras variables, so they are trainable (IAGAN fine-tunes them) and optimisers
update the loaded module in place. TF1 modules built with reference variables (the usual
case for TF1-Hub modules) expose no variables through ``tf.saved_model.load``; their graph is
re-imported with the reference variables replaced by resource variables initialised from the
module's checkpoint, so they can be fine-tuned too.

Example::

    from tfinverse import hub
    hub.export_generator(generator, "runs/dcgan/export", extra_metadata={"command": argv})
    g = hub.load_generator("runs/dcgan/export")
    x = g(g.sample_latent(4, seed=0))                 # [4, 64, 64, 3] in [0, 1]
    progan = hub.load_generator("/models/progan-128")  # TF1-Hub format directory
"""

from __future__ import annotations

import copy as copy_module
import json
import os
import shutil
import tempfile
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from tfinverse.models.generator import Generator, KerasGenerator, sample_latent

__all__ = [
    "save_with_metadata",
    "METADATA_FILENAME",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "export_generator",
    "load_generator",
    "read_generator_metadata",
    "guess_output_range",
    "SavedModelLayer",
    "flat_variable_name",
    "SavedModelGenerator",
    "IMAGE_MODEL_METADATA_FILENAME",
    "IMAGE_MODEL_FORMAT_NAME",
    "export_image_model",
    "read_image_model_metadata",
    "load_image_model",
    "load_restorer",
]

METADATA_FILENAME = "tfinverse_generator.json"
FORMAT_NAME = "tfinverse.generator"
FORMAT_VERSION = 1

IMAGE_MODEL_METADATA_FILENAME = "tfinverse_image_model.json"
IMAGE_MODEL_FORMAT_NAME = "tfinverse.image_model"

_DEFAULT_SIGNATURE = "default"
_NATIVE_SIGNATURE = "native"
_REFERENCE_VARIABLE_OPS = ("VariableV2", "Variable")


# ----------------------------------------------------------------------------- export


class _ExportRoot(tf.Module):
    """Root object of an exported generator.

    ``variables`` and ``trainable_variables`` are plain saved lists (the TF-Hub reusable
    SavedModel convention) rather than tf.Module's computed properties.
    """

    variables = None
    trainable_variables = None


def _as_generator(generator, latent_distribution, output_range) -> Generator:
    if isinstance(generator, Generator):
        if latent_distribution is not None and latent_distribution != generator.latent_distribution:
            raise ValueError(
                f"latent_distribution={latent_distribution!r} conflicts with the generator's "
                f"{generator.latent_distribution!r}"
            )
        if output_range is not None and tuple(map(float, output_range)) != generator.output_range:
            raise ValueError(f"output_range={output_range} conflicts with the generator's {generator.output_range}")
        return generator
    if not isinstance(generator, keras.Model):
        raise TypeError(
            "generator must be a tfinverse.models.Generator or a keras.Model from latents to "
            f"images, got {type(generator).__name__}"
        )
    if latent_distribution is None:
        raise ValueError(
            "exporting a plain keras.Model needs latent_distribution ('uniform' or 'normal'): "
            "the latent prior cannot be read from the model"
        )
    input_shape = generator.input_shape if generator.built else None
    if not (isinstance(input_shape, tuple) and len(input_shape) == 2 and isinstance(input_shape[1], int)):
        raise ValueError(
            f"a keras.Model generator must take latents of shape [None, latent_dim], got input shape {input_shape}"
        )
    return KerasGenerator(generator, input_shape[1], latent_distribution, output_range or (0.0, 1.0))


def _jsonable(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be JSON-serialisable: {error}") from error


def _replace_directory(source: str, target: str, overwrite: bool) -> None:
    """Moves the finished export ``source`` to ``target`` (renames on the same file system)."""
    if not os.path.lexists(target):
        os.rename(source, target)
        return
    if not overwrite:
        raise FileExistsError(f"{target!r} already exists; pass overwrite=True to replace it")
    parent, name = os.path.split(target)
    backup = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent or ".")
    moved = os.path.join(backup, name)
    os.rename(target, moved)
    try:
        os.rename(source, target)
    except BaseException:
        os.rename(moved, target)  # put the old export back
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)


def save_with_metadata(root: tf.Module, path: str, metadata: Dict[str, Any], metadata_filename: str,
                       signatures: Dict[str, Any], overwrite: bool = False) -> None:
    """Saves ``root`` as a SavedModel at ``path`` with ``metadata`` as a JSON asset, atomically.

    The model is written into a hidden staging folder beside ``path`` and moved into place
    only when complete (:func:`_replace_directory`), so an interrupted export never leaves a
    half-written model where a complete one was; the metadata travels inside the SavedModel
    as an asset (``root.metadata_file``).

    Args:
      root: the ``tf.Module`` to save (its ``variables`` and functions already attached).
      path: the SavedModel folder.
      metadata: JSON-serialisable description.
      metadata_filename: the asset's file name.
      signatures: serving signatures, name -> concrete function.
      overwrite: replace an existing folder.
    """
    parent, name = os.path.split(path)
    os.makedirs(parent or ".", exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent or ".")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            metadata_file = os.path.join(scratch, metadata_filename)
            with open(metadata_file, "w", encoding="utf-8") as handle:
                json.dump(metadata, handle, indent=2, sort_keys=True)
            root.metadata_file = tf.saved_model.Asset(metadata_file)
            export_dir = os.path.join(staging, name)
            tf.saved_model.save(root, export_dir, signatures=signatures)
        _replace_directory(export_dir, path, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_generator(
    generator,
    path: str,
    overwrite: bool = False,
    *,
    extra_metadata: Optional[Mapping[str, Any]] = None,
    latent_distribution: Optional[str] = None,
    output_range: Optional[Tuple[float, float]] = None,
) -> Dict[str, Any]:
    """Writes a generator as a self-describing TF2 SavedModel, atomically.

    The SavedModel is built in a temporary directory next to ``path`` and renamed into
    place, so ``path`` never holds a half-written export.

    Signatures: ``default`` (input ``z`` float32 ``[None, latent_dim]`` -> output ``default``,
    the generator's ``[0, 1]`` images) and ``native`` (-> output ``native``, the network's own
    range, see :meth:`Generator.native`). Both run the network in inference mode
    (``training=False``).

    Args:
      generator: a :class:`~tfinverse.models.generator.Generator`, or a built
        ``keras.Model`` from ``[None, latent_dim]`` latents to NHWC images.
      path: target directory.
      overwrite: replace an existing ``path``; otherwise an existing path is refused.
      extra_metadata: free-form JSON-serialisable dict stored under ``"extra"`` (for
        example the training command and data set).
      latent_distribution: ``"uniform"`` or ``"normal"``; required for a plain
        ``keras.Model``, checked against a ``Generator``'s own.
      output_range: native ``(low, high)`` of a plain ``keras.Model`` (default
        ``(0, 1)``); checked against a ``Generator``'s own.

    Returns:
      The metadata dict written to ``assets/tfinverse_generator.json``.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
      TypeError: if ``generator`` is neither a ``Generator`` nor a ``keras.Model``.
      ValueError: if the latent prior is unknown or conflicting, the model does not map
        ``[None, latent_dim]`` to ``[None, H, W, C]``, or ``extra_metadata`` is not JSON.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True to replace it")
    generator = _as_generator(generator, latent_distribution, output_range)
    latent_dim = int(generator.latent_dim)
    z_spec = tf.TensorSpec([None, latent_dim], tf.float32, name="z")

    @tf.function(input_signature=[z_spec])
    def generate(z):
        return tf.cast(generator(z, training=False), tf.float32)

    @tf.function(input_signature=[z_spec])
    def default_signature(z):
        return {"default": generate(z)}

    @tf.function(input_signature=[z_spec])
    def native_signature(z):
        return {"native": tf.cast(generator.native(z, training=False), tf.float32)}

    default_fn = default_signature.get_concrete_function()
    native_fn = native_signature.get_concrete_function()
    image_shape = default_fn.structured_outputs["default"].shape
    if image_shape.rank != 4 or not image_shape[1:].is_fully_defined():
        raise ValueError(f"the generator must output images [None, H, W, C], got {image_shape}")
    height, width, channels = (int(d) for d in image_shape[1:])
    if tuple(generator.output_shape) != (height, width, channels):
        raise ValueError(
            f"generator.output_shape {tuple(generator.output_shape)} differs from its output {image_shape}"
        )

    # The captured variables are exactly those that influence the output.
    captured: Dict[int, tf.Variable] = {}
    for fn in (default_fn, native_fn, generate.get_concrete_function()):
        for variable in fn.variables:
            captured.setdefault(id(variable), variable)
    variables = list(captured.values())

    from tfinverse import __version__

    low, high = generator.output_range
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "latent_dim": latent_dim,
        "latent_distribution": generator.latent_distribution,
        "resolution": [height, width],
        "channels": channels,
        "value_range": [0.0, 1.0],
        "native_output_range": [float(low), float(high)],
        "clip_output": bool(generator.clip_output),
        "signatures": {_DEFAULT_SIGNATURE: "default", _NATIVE_SIGNATURE: "native"},
        "input_name": "z",
        "generator_class": f"{type(generator).__module__}.{type(generator).__qualname__}",
        "num_trainable_variables": sum(1 for v in variables if v.trainable),
        "tfinverse_version": __version__,
        "tensorflow_version": tf.__version__,
        "extra": _jsonable(dict(extra_metadata or {}), "extra_metadata"),
    }

    root = _ExportRoot()
    root.variables = variables
    root.trainable_variables = [v for v in variables if v.trainable]
    root.regularization_losses = []
    root.__call__ = generate
    root.generate_native = native_signature
    save_with_metadata(root, path, metadata, METADATA_FILENAME,
                       {_DEFAULT_SIGNATURE: default_fn, _NATIVE_SIGNATURE: native_fn}, overwrite)
    return metadata


def _read_export_metadata(path, filename: str, format_name: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The JSON description an export keeps in ``assets/<filename>``, or None if there is none.

    Raises:
      ValueError: if the file is not valid JSON, or (with ``format_name``) not a dict of that
        ``format``.
    """
    metadata_file = os.path.join(os.fspath(path), "assets", filename)
    if not os.path.isfile(metadata_file):
        return None
    try:
        with open(metadata_file, encoding="utf-8") as handle:
            metadata = json.load(handle)
    except ValueError as error:
        raise ValueError(f"{metadata_file!r} is not valid JSON: {error}") from error
    if format_name is not None and (not isinstance(metadata, dict) or metadata.get("format") != format_name):
        raise ValueError(f"{metadata_file!r} is not a {format_name} description")
    return metadata


def read_generator_metadata(path: str) -> Optional[Dict[str, Any]]:
    """Reads the description stored by :func:`export_generator`.

    Args:
      path: a SavedModel directory.

    Returns:
      The metadata dict, or None if the directory was not written by :func:`export_generator`.

    Raises:
      ValueError: if the metadata file exists but is not valid JSON of this format.
    """
    metadata_file = os.path.join(os.fspath(path), "assets", METADATA_FILENAME)
    metadata = _read_export_metadata(path, METADATA_FILENAME, FORMAT_NAME)
    if metadata is None:
        return None
    if int(metadata.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{metadata_file!r} has format version {metadata['format_version']}; this tfinverse "
            f"reads up to {FORMAT_VERSION}"
        )
    return metadata


# ----------------------------------------------------------------------------- SavedModel access


def _read_saved_model_proto(path: str):
    from tensorflow.core.protobuf import saved_model_pb2

    binary = os.path.join(path, "saved_model.pb")
    text = os.path.join(path, "saved_model.pbtxt")
    proto = saved_model_pb2.SavedModel()
    if os.path.isfile(binary):
        with open(binary, "rb") as f:
            proto.ParseFromString(f.read())
    elif os.path.isfile(text):
        from google.protobuf import text_format

        with open(text, encoding="utf-8") as f:
            text_format.Parse(f.read(), proto)
    else:
        raise ValueError(
            f"{path!r} is not a SavedModel directory: it has no saved_model.pb (nor saved_model.pbtxt)"
        )
    return proto


def _is_tf2_saved_model(proto) -> bool:
    return any(len(mg.object_graph_def.nodes) > 0 for mg in proto.meta_graphs)


def _v1_tags(path: str, proto, tags: Optional[Sequence[str]]) -> List[str]:
    tag_sets = [sorted(mg.meta_info_def.tags) for mg in proto.meta_graphs]
    if tags is not None:
        wanted = sorted(tags)
        if wanted not in tag_sets:
            raise ValueError(f"{path!r} has no MetaGraph with tags {wanted}; it has {tag_sets}")
        return wanted
    if os.path.isfile(os.path.join(path, "tfhub_module.pb")) and [] in tag_sets:
        return []  # TF1-Hub format: the default (inference) graph has no tags
    if len(tag_sets) == 1:
        return tag_sets[0]
    if ["serve"] in tag_sets:
        return ["serve"]
    raise ValueError(f"{path!r} has several MetaGraphs {tag_sets}; pass tags= to pick one")


def _pick_signature(keys: Sequence[str], requested: Optional[str], path: str) -> str:
    keys = [k for k in keys if not k.startswith("__")]
    if requested is not None:
        if requested not in keys:
            raise ValueError(f"{path!r} has no signature {requested!r}; its signatures are {sorted(keys)}")
        return requested
    for preferred in (_DEFAULT_SIGNATURE, "serving_default"):
        if preferred in keys:
            return preferred
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise ValueError(f"{path!r} has no signatures; a generator needs a signature from z to images")
    raise ValueError(f"{path!r} has several signatures {sorted(keys)}; pass signature= to pick one")


def _pick_input(inputs: Mapping[str, Tuple[tf.DType, tf.TensorShape]], signature: str) -> str:
    described = {name: f"{dtype.name}{shape}" for name, (dtype, shape) in inputs.items()}
    floats = [name for name, (dtype, _) in inputs.items() if dtype.is_floating]
    if not floats:
        raise ValueError(
            f"signature {signature!r} has no float input for the latent vector z (inputs: {described})"
        )
    if len(inputs) != 1:
        raise ValueError(
            f"signature {signature!r} must take exactly one input, the latent z [batch, latent_dim]; "
            f"it takes {described}"
        )
    name = floats[0]
    shape = inputs[name][1]
    if shape.rank is not None and shape.rank != 2:
        raise ValueError(
            f"signature {signature!r} input {name!r} must be latents [batch, latent_dim], got shape {shape}"
        )
    return name


def _pick_output(
    outputs: Mapping[str, Tuple[tf.DType, tf.TensorShape]], requested: Optional[str], signature: str
) -> str:
    described = {name: f"{dtype.name}{shape}" for name, (dtype, shape) in outputs.items()}
    if requested is not None:
        if requested not in outputs:
            raise ValueError(f"signature {signature!r} has no output {requested!r}; outputs: {described}")
        name = requested
    elif len(outputs) == 1:
        name = next(iter(outputs))
    elif _DEFAULT_SIGNATURE in outputs:
        name = _DEFAULT_SIGNATURE
    else:
        images = [n for n, (_, shape) in outputs.items() if shape.rank == 4]
        if len(images) != 1:
            raise ValueError(f"signature {signature!r} has several outputs {described}; pass output_key=")
        name = images[0]
    dtype, shape = outputs[name]
    if shape.rank is not None and shape.rank != 4:
        raise ValueError(
            f"signature {signature!r} output {name!r} must be images [batch, H, W, C], got shape {shape}"
        )
    if not (dtype.is_floating or dtype.is_integer):
        raise ValueError(f"signature {signature!r} output {name!r} has non-numeric dtype {dtype.name}")
    return name


class _Endpoint:
    """A resolved ``z -> images`` function of a SavedModel, with its variables."""

    def __init__(self, key, call, latent_dim, input_dtype, output_dtype, output_shape, variables, keepalive, source):
        self.key: str = key
        self.call: Callable[[tf.Tensor], tf.Tensor] = call
        self.latent_dim: Optional[int] = latent_dim
        self.input_dtype: tf.DType = input_dtype
        self.output_dtype: tf.DType = output_dtype
        self.output_shape: tf.TensorShape = output_shape
        self.variables: List[tf.Variable] = variables
        self.keepalive = keepalive  # the loaded object owning the functions and variables
        self.source = source


def _spec_of(value) -> Tuple[tf.DType, tf.TensorShape]:
    return tf.as_dtype(value.dtype), tf.TensorShape(value.shape)


def _open_tf2_endpoint(path, proto, signature, output_key, tags) -> _Endpoint:
    loaded = tf.saved_model.load(path, tags=tags)
    key = _pick_signature(list(loaded.signatures.keys()), signature, path)
    fn = loaded.signatures[key]
    inputs = {name: _spec_of(spec) for name, spec in fn.structured_input_signature[1].items()}
    input_name = _pick_input(inputs, key)
    outputs = {name: _spec_of(spec) for name, spec in fn.structured_outputs.items()}
    output_name = _pick_output(outputs, output_key, key)

    def call(z):
        return fn(**{input_name: z})[output_name]

    input_dtype, input_shape = inputs[input_name]
    return _Endpoint(
        key, call, input_shape[-1] if input_shape.rank else None, input_dtype, outputs[output_name][0],
        outputs[output_name][1], list(fn.variables), loaded, "saved_model",
    )


def _collection_variable_names(meta_graph, collection: str) -> Optional[set]:
    from tensorflow.core.framework import variable_pb2

    if collection not in meta_graph.collection_def:
        return None
    names = set()
    for serialized in meta_graph.collection_def[collection].bytes_list.value:
        variable_def = variable_pb2.VariableDef()
        variable_def.ParseFromString(serialized)
        names.add(variable_def.variable_name.split(":")[0])
    return names


def _subgraph(graph_def, output_node: str):
    """Copy of ``graph_def`` holding only ``output_node`` and the nodes it depends on."""
    nodes = {node.name: node for node in graph_def.node}
    needed, pending = set(), [output_node]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        if name not in nodes:
            raise ValueError(f"the graph has no node {name!r}")
        needed.add(name)
        # inputs are "node", "node:1" or "^node" (control dependency)
        pending.extend(source.lstrip("^").split(":")[0] for source in nodes[name].input)
    subgraph = type(graph_def)()
    subgraph.versions.CopyFrom(graph_def.versions)
    subgraph.library.CopyFrom(graph_def.library)
    subgraph.node.extend(node for node in graph_def.node if node.name in needed)
    return subgraph


def _lift_reference_variables(path, meta_graph, input_info, output_info):
    """Re-imports a TF1 graph with its reference variables replaced by resource variables.

    Returns:
      ``(call, variables)`` or None when the graph cannot be lifted (no reference variables,
      resource variables, or variables missing from the checkpoint).
    """
    output_node = output_info.name.split(":")[0]
    graph_def = _subgraph(meta_graph.graph_def, output_node)
    reference_nodes = [node for node in graph_def.node if node.op in _REFERENCE_VARIABLE_OPS]
    if not reference_nodes or any(node.op == "VarHandleOp" for node in graph_def.node):
        return None
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    if not all(reader.has_tensor(node.name) for node in reference_nodes):
        return None
    trainable_names = _collection_variable_names(meta_graph, "trainable_variables")
    variables: Dict[str, tf.Variable] = {}
    for node in reference_nodes:
        value = reader.get_tensor(node.name)
        trainable = trainable_names is None or node.name in trainable_names
        variables[node.name] = tf.Variable(value, trainable=trainable, name=node.name)
        # The variable becomes a placeholder fed with the new variable's value.
        dtype, shape = node.attr["dtype"], node.attr["shape"]
        node.op = "Placeholder"
        node.ClearField("attr")
        node.attr["dtype"].CopyFrom(dtype)
        node.attr["shape"].CopyFrom(shape)
    for node in graph_def.node:
        node.ClearField("device")
    input_spec = tf.TensorSpec(tf.TensorShape(input_info.tensor_shape), tf.as_dtype(input_info.dtype))

    @tf.function(input_signature=[input_spec])
    def call(z):
        input_map = {input_info.name: z}
        input_map.update({f"{name}:0": variable.read_value() for name, variable in variables.items()})
        (images,) = tf.graph_util.import_graph_def(
            graph_def, input_map=input_map, return_elements=[output_info.name], name="lifted"
        )
        return images

    call.get_concrete_function()  # import now, so an unsupported graph fails here
    return call, list(variables.values())


def _open_tf1_endpoint(path, proto, signature, output_key, tags, lift) -> _Endpoint:
    tags = _v1_tags(path, proto, tags)
    meta_graph = next(mg for mg in proto.meta_graphs if sorted(mg.meta_info_def.tags) == tags)
    key = _pick_signature(list(meta_graph.signature_def.keys()), signature, path)
    signature_def = meta_graph.signature_def[key]

    def described(infos):
        return {
            name: (tf.as_dtype(info.dtype), tf.TensorShape(info.tensor_shape)) for name, info in infos.items()
        }

    inputs, outputs = described(signature_def.inputs), described(signature_def.outputs)
    input_name = _pick_input(inputs, key)
    output_name = _pick_output(outputs, output_key, key)
    input_dtype, input_shape = inputs[input_name]
    latent_dim = input_shape[-1] if input_shape.rank else None
    input_info, output_info = signature_def.inputs[input_name], signature_def.outputs[output_name]
    if lift and input_info.name and output_info.name:
        try:
            lifted = _lift_reference_variables(path, meta_graph, input_info, output_info)
        except Exception as error:  # fall back to the frozen signature below
            warnings.warn(
                f"could not re-import the TF1 graph of {path!r} with trainable variables ({error}); "
                "its weights will be frozen",
                stacklevel=3,
            )
            lifted = None
        if lifted is not None:
            call, variables = lifted
            return _Endpoint(
                key, call, latent_dim, input_dtype, outputs[output_name][0], outputs[output_name][1],
                variables, call, "tf1_lifted",
            )
    loaded = tf.saved_model.load(path, tags=tags)
    fn = loaded.signatures[key]
    variables = list(fn.variables) or list(getattr(loaded, "variables", []))

    def call(z):
        return fn(**{input_name: z})[output_name]

    return _Endpoint(
        key, call, latent_dim, input_dtype, outputs[output_name][0], outputs[output_name][1], variables, loaded, "tf1"
    )


def _open_endpoint(path, signature=None, output_key=None, tags=None, lift_reference_variables=True) -> _Endpoint:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no SavedModel at {path!r}")
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is not a SavedModel directory")
    proto = _read_saved_model_proto(path)
    if _is_tf2_saved_model(proto):
        return _open_tf2_endpoint(path, proto, signature, output_key, tags)
    return _open_tf1_endpoint(path, proto, signature, output_key, tags, lift_reference_variables)


def flat_variable_name(name: str) -> str:
    """A variable's name or path as :class:`SavedModelLayer` names its Keras variable ("/" -> "_")."""
    return name.split(":")[0].replace("/", "_") or "weight"


def _keras_variable_name(variable: tf.Variable) -> str:
    return flat_variable_name(variable.name)


@keras.saving.register_keras_serializable(package="tfinverse")
class SavedModelLayer(keras.layers.Layer):
    """Keras 3 layer running a SavedModel signature ``z -> images``.

    Wraps ``tf.saved_model.load`` (TF2 SavedModels, TF1 SavedModels and TF1-Hub-format
    modules alike) so the module can sit inside a Keras 3 model. The module's variables are
    tracked as Keras variables that *are* the loaded ``tf.Variable`` objects: gradients and
    optimiser updates reach the module. Output: the signature's raw output as float32
    (no range mapping; add e.g. ``keras.layers.Rescaling(0.5, offset=0.5)`` for ``[-1, 1]``
    modules). The ``training`` flag is ignored: signatures are traced for inference.

    Args:
      path: SavedModel directory.
      signature: signature key; default ``"default"``, else ``"serving_default"``, else the
        only one.
      output_key: output of the signature to return; default the only one, else
        ``"default"``, else the only rank-4 one.
      tags: MetaGraph tags of a TF1 SavedModel (default: ``[]`` for TF-Hub modules, else the
        only or the ``serve`` MetaGraph).
      trainable: whether the module's trainable variables are trainable here.
      lift_reference_variables: re-import TF1 graphs that use reference variables with
        resource variables, so they can be fine-tuned (otherwise their weights are frozen).
      **kwargs: forwarded to ``keras.layers.Layer``.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: if ``path`` is not a SavedModel, or no suitable signature, float latent
        input or image output is found (the message lists what there is).
    """

    def __init__(
        self,
        path: str,
        signature: Optional[str] = None,
        output_key: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
        trainable: bool = True,
        lift_reference_variables: bool = True,
        **kwargs,
    ):
        super().__init__(trainable=trainable, **kwargs)
        self.module_path = os.fspath(path)  # Layer.path is Keras's own (the layer's name path)
        self.signature = signature
        self.output_key = output_key
        self.tags = None if tags is None else list(tags)
        self.lift_reference_variables = bool(lift_reference_variables)
        self._endpoint = _open_endpoint(self.module_path, signature, output_key, self.tags, self.lift_reference_variables)
        # Keras variables whose storage is the module's own variable (no copy).
        self.module_variables = [
            keras.Variable(
                initializer=variable,
                trainable=bool(variable.trainable),
                dtype=variable.dtype.name,
                name=_keras_variable_name(variable),
            )
            for variable in self._endpoint.variables
            if variable.dtype.is_floating
        ]
        self.built = True

    @property
    def latent_dim(self) -> Optional[int]:
        """Latent dimension from the signature's input spec (None if not static)."""
        return self._endpoint.latent_dim

    @property
    def signature_key(self) -> str:
        """Key of the signature in use (the resolved ``signature``)."""
        return self._endpoint.key

    @property
    def module_output_shape(self) -> tf.TensorShape:
        """Static output shape declared by the signature (may be partly unknown)."""
        return self._endpoint.output_shape

    @property
    def source_format(self) -> str:
        """``"saved_model"`` (TF2), ``"tf1"`` or ``"tf1_lifted"`` (TF1, re-imported)."""
        return self._endpoint.source

    def call(self, z):
        z = tf.cast(z, self._endpoint.input_dtype)
        return tf.cast(self._endpoint.call(z), tf.float32)

    def compute_output_shape(self, input_shape):
        shape = self._endpoint.output_shape
        if shape.rank == 4 and shape[1:].is_fully_defined():
            return (input_shape[0], *(int(d) for d in shape[1:]))
        return super().compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "path": self.module_path,
            "signature": self.signature,
            "output_key": self.output_key,
            "tags": self.tags,
            "lift_reference_variables": self.lift_reference_variables,
        }


# ----------------------------------------------------------------------------- generators


def guess_output_range(samples) -> Tuple[float, float]:
    """Guesses a generator's native output range from sample images.

    Rule (percentiles make it robust to a few outliers of unbounded networks):
    integer samples or a 99.5th percentile above 2 -> ``(0, 255)``; otherwise a 0.5th
    percentile below -0.1 -> ``(-1, 1)``; otherwise ``(0, 1)``. Pass ``output_range``
    explicitly to :func:`load_generator` when a module defeats this rule.

    Args:
      samples: array-like of generated images (any shape).

    Returns:
      ``(low, high)``.

    Raises:
      ValueError: if the samples are empty or not finite.
    """
    values = np.asarray(samples)
    if values.size == 0:
        raise ValueError("cannot guess an output range from no samples")
    if np.issubdtype(values.dtype, np.integer):
        return (0.0, 255.0)
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("generator samples contain NaN or infinity")
    low, high = np.percentile(values, [0.5, 99.5])
    if high > 2.0:
        return (0.0, 255.0)
    if low < -0.1:
        return (-1.0, 1.0)
    return (0.0, 1.0)


class SavedModelGenerator(Generator):
    """A :class:`~tfinverse.models.generator.Generator` backed by a :class:`SavedModelLayer`.

    Args:
      layer: the layer running the module.
      latent_distribution: ``"uniform"`` or ``"normal"``.
      output_range: native ``(low, high)`` of the layer's output, mapped onto ``[0, 1]``.
      clip_output: clip the mapped output to ``[0, 1]``.
      output_shape: ``(H, W, C)``; default from the signature's static output shape.
      latent_dim: needed only when the signature does not declare it.
      metadata: description read from an export (see :func:`read_generator_metadata`).

    Raises:
      ValueError: if the latent dimension or output shape cannot be determined or conflicts
        with the layer.
    """

    def __init__(
        self,
        layer: SavedModelLayer,
        latent_distribution: str,
        output_range: Tuple[float, float] = (0.0, 1.0),
        clip_output: bool = True,
        output_shape: Optional[Tuple[int, int, int]] = None,
        latent_dim: Optional[int] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ):
        declared = layer.latent_dim
        if latent_dim is not None and declared is not None and int(latent_dim) != int(declared):
            raise ValueError(f"latent_dim={latent_dim} conflicts with the module's input of dimension {declared}")
        latent_dim = declared if latent_dim is None else latent_dim
        if latent_dim is None:
            raise ValueError(f"the module at {layer.module_path!r} does not declare its latent dimension: pass latent_dim=")
        super().__init__(int(latent_dim), latent_distribution, output_range, clip_output)
        if output_shape is None:
            shape = layer.module_output_shape
            if not (shape.rank == 4 and shape[1:].is_fully_defined()):
                raise ValueError(f"the module's output shape {shape} is not static: pass output_shape=")
            output_shape = tuple(int(d) for d in shape[1:])
        self._output_shape = tuple(int(d) for d in output_shape)
        self._layer = layer
        self.metadata = dict(metadata) if metadata else {}

    @property
    def layer(self) -> SavedModelLayer:
        """The Keras layer running the module (native output range)."""
        return self._layer

    @property
    def path(self) -> str:
        """Directory the module was loaded from."""
        return self._layer.module_path

    @property
    def output_shape(self) -> Tuple[int, int, int]:
        return self._output_shape

    @property
    def trainable_variables(self) -> List[tf.Variable]:
        return list(self._layer.trainable_variables)

    @property
    def variables(self) -> List[tf.Variable]:
        return list(self._layer.weights)

    def native(self, z, training: bool = False) -> tf.Tensor:
        # SavedModel signatures are inference graphs: ``training`` has no effect.
        return self._layer(z)

    def copy(self) -> "SavedModelGenerator":
        """An independent copy: the module is loaded again and given this one's current values.

        Returns:
          A generator with its own variables; fine-tuning either leaves the other unchanged.
          The SavedModel directory must still exist.
        """
        layer = SavedModelLayer.from_config(self._layer.get_config())
        if len(layer.weights) != len(self._layer.weights):
            raise RuntimeError(
                f"reloaded module has {len(layer.weights)} variables, this one {len(self._layer.weights)}"
            )
        for target, source in zip(layer.weights, self._layer.weights):
            target.assign(source)
        duplicate = copy_module.copy(self)
        duplicate._layer = layer
        duplicate.metadata = dict(self.metadata)
        return duplicate


def _probe(native_fn, latent_dim: int, latent_distribution: str, num_samples: int) -> np.ndarray:
    z = sample_latent(num_samples, latent_dim, latent_distribution, seed=0)
    return np.asarray(native_fn(tf.constant(z)))


def _check_agrees(name: str, given, stored) -> None:
    if given is not None and given != stored:
        raise ValueError(f"{name}={given!r} conflicts with the exported generator's {stored!r}")


def _load_tfinverse_export(path, metadata, latent_dim, latent_distribution, output_range, clip_output, trainable):
    _check_agrees("latent_dim", None if latent_dim is None else int(latent_dim), int(metadata["latent_dim"]))
    _check_agrees("latent_distribution", latent_distribution, metadata["latent_distribution"])
    native_range = tuple(float(v) for v in metadata["native_output_range"])
    _check_agrees("output_range", None if output_range is None else tuple(map(float, output_range)), native_range)
    layer = SavedModelLayer(path, signature=_NATIVE_SIGNATURE, output_key="native", trainable=trainable)
    height, width = metadata["resolution"]
    return SavedModelGenerator(
        layer,
        metadata["latent_distribution"],
        output_range=native_range,
        clip_output=bool(metadata.get("clip_output", True)) if clip_output is None else clip_output,
        output_shape=(int(height), int(width), int(metadata["channels"])),
        latent_dim=int(metadata["latent_dim"]),
        metadata=metadata,
    )


def _load_foreign_saved_model(
    path, latent_dim, latent_distribution, output_range, clip_output, trainable, signature, output_key, tags, num_samples
):
    layer = SavedModelLayer(path, signature=signature, output_key=output_key, tags=tags, trainable=trainable)
    declared = layer.latent_dim
    if latent_dim is not None and declared is not None and int(latent_dim) != int(declared):
        raise ValueError(f"latent_dim={latent_dim} conflicts with the module's input of dimension {declared}")
    dim = declared if declared is not None else latent_dim
    if dim is None:
        raise ValueError(f"the module at {path!r} does not declare its latent dimension: pass latent_dim=")
    distribution = latent_distribution or "normal"
    shape = layer.module_output_shape
    samples = None
    if output_range is None or not (shape.rank == 4 and shape[1:].is_fully_defined()):
        samples = _probe(layer, int(dim), distribution, num_samples if output_range is None else 1)
        if samples.ndim != 4:
            raise ValueError(f"the module at {path!r} must output images [batch, H, W, C], got shape {samples.shape}")
    if output_range is None:
        output_range = guess_output_range(samples)
    output_shape = tuple(int(d) for d in (shape[1:] if samples is None else samples.shape[1:]))
    return SavedModelGenerator(
        layer,
        distribution,
        output_range=output_range,
        clip_output=True if clip_output is None else clip_output,
        output_shape=output_shape,
        latent_dim=int(dim),
        metadata={"source": path, "signature": layer.signature_key, "source_format": layer.source_format},
    )


def _load_keras_file(path, latent_dim, latent_distribution, output_range, clip_output, trainable, num_samples):
    model = keras.saving.load_model(path, compile=False)
    input_shape = model.input_shape
    if not (isinstance(input_shape, tuple) and len(input_shape) == 2):
        raise ValueError(f"the model in {path!r} must take latents [batch, latent_dim], got input shape {input_shape}")
    declared = input_shape[1]
    if latent_dim is not None and declared is not None and int(latent_dim) != int(declared):
        raise ValueError(f"latent_dim={latent_dim} conflicts with the model's input of dimension {declared}")
    dim = declared if declared is not None else latent_dim
    if dim is None:
        raise ValueError(f"the model in {path!r} does not declare its latent dimension: pass latent_dim=")
    distribution = latent_distribution or "normal"
    model.trainable = trainable
    if output_range is None:
        output_range = guess_output_range(_probe(lambda z: model(z, training=False), int(dim), distribution, num_samples))
    return KerasGenerator(
        model, int(dim), distribution, output_range, clip_output=True if clip_output is None else clip_output
    )


def _pggan_settings_from_state_dict(state: Mapping[str, np.ndarray]) -> Dict[str, int]:
    """Infers the original-layout PGGAN hyper-parameters from its state_dict shapes."""
    blocks = sorted(
        int(key.split(".")[1]) for key in state if key.startswith("features.") and key.endswith(".conv.weight")
    )
    if not blocks or blocks != list(range(len(blocks))) or len(blocks) % 2 or "output.conv.weight" not in state:
        raise ValueError(
            "the state_dict is not the PGGAN generator of the original layout (expected keys "
            "features.{i}.conv.weight for an even number of blocks and output.conv.weight)"
        )
    num_levels = len(blocks) // 2
    first = np.shape(state["features.0.conv.weight"])  # OIHW
    last = np.shape(state[f"features.{blocks[-1]}.conv.weight"])
    fmap_max = int(first[0])
    # nf(level) = min(fmap_base / 2^(level + 1), fmap_max); the last level pins fmap_base down.
    fmap_base = int(last[0]) * 2**num_levels if int(last[0]) < fmap_max else fmap_max * 2**num_levels
    return {
        "resolution": 4 * 2 ** (num_levels - 1),
        "latent_dim": int(first[1]),
        "channels": int(np.shape(state["output.conv.weight"])[0]),
        "fmap_base": fmap_base,
        "fmap_max": fmap_max,
    }


def _load_pth(path, latent_dim, latent_distribution, output_range, clip_output, trainable, state_dict_key):
    from tfinverse.models.pggan import PGGANGenerator
    from tfinverse.utils.torch_pickle import read_state_dict

    state = read_state_dict(path, key=state_dict_key)
    settings = _pggan_settings_from_state_dict(state)
    if latent_dim is not None and int(latent_dim) != settings["latent_dim"]:
        raise ValueError(f"latent_dim={latent_dim} conflicts with the checkpoint's {settings['latent_dim']}")
    if latent_distribution not in (None, "normal"):
        raise ValueError(f"PGGAN latents are 'normal', got latent_distribution={latent_distribution!r}")
    if output_range is not None and tuple(map(float, output_range)) != (-1.0, 1.0):
        raise ValueError(f"PGGAN's native range is (-1, 1), got output_range={output_range}")
    generator = PGGANGenerator.from_original_layout(
        **settings, clip_output=True if clip_output is None else clip_output
    )
    generator.load_original_state_dict(state)
    generator.network.trainable = trainable
    return generator


def load_generator(
    path: str,
    latent_dim: Optional[int] = None,
    latent_distribution: Optional[str] = None,
    output_range: Optional[Tuple[float, float]] = None,
    *,
    clip_output: Optional[bool] = None,
    trainable: bool = True,
    signature: Optional[str] = None,
    output_key: Optional[str] = None,
    tags: Optional[Sequence[str]] = None,
    state_dict_key: Optional[str] = None,
    num_range_samples: int = 16,
) -> Generator:
    """Loads a pretrained generator as a :class:`~tfinverse.models.generator.Generator`.

    ================================  =====================================================
    ``path``                          result
    ================================  =====================================================
    export of :func:`export_generator` :class:`SavedModelGenerator`, described by its metadata
    other SavedModel / TF1-Hub dir    :class:`SavedModelGenerator`; ``latent_dim`` from the
                                      signature, range guessed unless ``output_range``
    ``*.keras``                       :class:`~tfinverse.models.generator.KerasGenerator`
    ``*.pth`` / ``*.pt``              :class:`~tfinverse.models.pggan.PGGANGenerator`
                                      (original IAGAN layout, shapes inferred)
    ================================  =====================================================

    Args:
      path: file or directory.
      latent_dim: only needed when the module does not declare it; checked otherwise.
      latent_distribution: latent prior, ``"uniform"`` or ``"normal"``. Modules other than
        tfinverse exports do not record it: the default there is ``"normal"`` (as for
        progan-128 and PGGAN); pass ``"uniform"`` for DCGAN/BEGAN-style modules.
      output_range: native ``(low, high)`` of the module; default from the metadata, or
        guessed with :func:`guess_output_range` from ``num_range_samples`` samples.
      clip_output: clip the mapped output to ``[0, 1]``; default from the metadata, else True.
      trainable: whether the loaded weights are trainable (IAGAN fine-tunes them).
      signature: SavedModel signature key (see :class:`SavedModelLayer`).
      output_key: signature output to use (see :class:`SavedModelLayer`).
      tags: MetaGraph tags of a TF1 SavedModel.
      state_dict_key: entry of a ``.pth`` checkpoint holding the state_dict, if nested.
      num_range_samples: latents drawn (seed 0) to guess the output range.

    Returns:
      The generator: ``g(z)`` gives float32 ``[n, H, W, C]`` images in ``[0, 1]``.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: for a directory that is not a SavedModel, a file type that is not
        supported, a signature without a float latent input or image output, or arguments
        that conflict with what the file declares.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no generator at {path!r}")
    if os.path.isdir(path):
        metadata = read_generator_metadata(path)
        if metadata is not None:
            return _load_tfinverse_export(
                path, metadata, latent_dim, latent_distribution, output_range, clip_output, trainable
            )
        return _load_foreign_saved_model(
            path, latent_dim, latent_distribution, output_range, clip_output, trainable,
            signature, output_key, tags, num_range_samples,
        )
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".keras":
        return _load_keras_file(path, latent_dim, latent_distribution, output_range, clip_output, trainable, num_range_samples)
    if suffix in (".pth", ".pt"):
        return _load_pth(path, latent_dim, latent_distribution, output_range, clip_output, trainable, state_dict_key)
    raise ValueError(
        f"cannot load a generator from {path!r}: expected a SavedModel directory, a .keras file "
        "or a PyTorch .pth/.pt state_dict"
    )


# ----------------------------------------------------------------------------- image-to-image models


class _ImageModelRoot(tf.Module):
    """Root object of an exported image-to-image model (saved ``variables`` lists, as generators)."""

    variables = None
    trainable_variables = None


def export_image_model(
    fn: Callable[[tf.Tensor], tf.Tensor],
    path: str,
    input_shape: Sequence[int],
    overwrite: bool = False,
    *,
    variables: Optional[Sequence[tf.Variable]] = None,
    extra_metadata: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """Writes an image-to-image function (an enhancer ``y -> x``) as a TF-Hub-style SavedModel.

    One ``default`` signature: input ``y`` float32 ``[None, H, W, C]`` -> output ``default``
    float32 ``[None, H', W', C']`` (images in ``[0, 1]`` by convention); ``obj(y)`` calls it.
    The description (shapes, versions, ``extra``) is in ``assets/tfinverse_image_model.json``.
    Written atomically like :func:`export_generator`; :func:`load_image_model` reads it back.

    Args:
      fn: ``y -> images``, traceable by ``tf.function``.
      path: target directory.
      input_shape: ``(H, W, C)`` of the inputs.
      overwrite: replace an existing ``path``.
      variables: the variables ``fn`` reads (default: those its trace captures).
      extra_metadata: free-form JSON-serialisable dict stored under ``"extra"``.

    Returns:
      The metadata dict written.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
      ValueError: if the output is not ``[None, H, W, C]`` or ``extra_metadata`` is not JSON.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True to replace it")
    input_shape = tuple(int(d) for d in input_shape)
    y_spec = tf.TensorSpec([None, *input_shape], tf.float32, name="y")

    @tf.function(input_signature=[y_spec])
    def apply(y):
        return tf.cast(fn(y), tf.float32)

    @tf.function(input_signature=[y_spec])
    def default_signature(y):
        return {"default": apply(y)}

    concrete = default_signature.get_concrete_function()
    output_shape = concrete.structured_outputs["default"].shape
    if output_shape.rank != 4 or not output_shape[1:].is_fully_defined():
        raise ValueError(f"the model must output images [None, H, W, C], got {output_shape}")
    if variables is None:
        captured: Dict[int, tf.Variable] = {}
        for function in (concrete, apply.get_concrete_function()):
            for variable in function.variables:
                captured.setdefault(id(variable), variable)
        variables = list(captured.values())
    variables = list(variables)

    from tfinverse import __version__

    metadata = {
        "format": IMAGE_MODEL_FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "input_shape": list(input_shape),
        "output_shape": [int(d) for d in output_shape[1:]],
        "value_range": [0.0, 1.0],
        "signatures": {_DEFAULT_SIGNATURE: "default"},
        "input_name": "y",
        "tfinverse_version": __version__,
        "tensorflow_version": tf.__version__,
        "extra": _jsonable(dict(extra_metadata or {}), "extra_metadata"),
    }
    root = _ImageModelRoot()
    root.variables = variables
    root.trainable_variables = [v for v in variables if v.trainable]
    root.__call__ = apply
    save_with_metadata(root, path, metadata, IMAGE_MODEL_METADATA_FILENAME, {_DEFAULT_SIGNATURE: concrete}, overwrite)
    return metadata


def read_image_model_metadata(path: str) -> Optional[Dict[str, Any]]:
    """The description stored by :func:`export_image_model`, or None for another directory.

    Raises:
      ValueError: if the file exists but is not a description of this format.
    """
    return _read_export_metadata(path, IMAGE_MODEL_METADATA_FILENAME, IMAGE_MODEL_FORMAT_NAME)


def load_image_model(path: str, signature: Optional[str] = None, output_key: Optional[str] = None):
    """Loads an image-to-image SavedModel as a function ``y -> images`` (float32 tensors).

    Reads exports of :func:`export_image_model` (their metadata is attached as
    ``fn.metadata``) and any TF2 SavedModel with a signature from one float image input to
    images (``default``, else ``serving_default``, else the only one).

    Args:
      path: the SavedModel directory.
      signature: signature key (see above for the default).
      output_key: output of the signature (default the only one, else ``"default"``).

    Returns:
      A callable ``fn(y)`` on float ``[n, H, W, C]`` arrays or tensors returning float32
      tensors; ``fn.metadata`` (dict or None), ``fn.signature``, ``fn.variables``.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: if it is not a TF2 SavedModel with such a signature.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no image model at {path!r}")
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is not a SavedModel directory")
    metadata = read_image_model_metadata(path)
    proto = _read_saved_model_proto(path)
    if not _is_tf2_saved_model(proto):
        raise ValueError(f"{path!r} is a TF1 SavedModel; load_image_model reads TF2 SavedModels")
    loaded = tf.saved_model.load(path)
    key = _pick_signature(list(loaded.signatures.keys()), signature, path)
    concrete = loaded.signatures[key]
    inputs = {name: _spec_of(spec) for name, spec in concrete.structured_input_signature[1].items()}
    images = [name for name, (dtype, shape) in inputs.items() if dtype.is_floating and shape.rank == 4]
    if len(inputs) != 1 or not images:
        raise ValueError(f"signature {key!r} of {path!r} must take one float image input [batch, H, W, C], "
                         f"it takes {inputs}")
    outputs = {name: _spec_of(spec) for name, spec in concrete.structured_outputs.items()}
    output_name = _pick_output(outputs, output_key, key)
    input_name, input_dtype = images[0], inputs[images[0]][0]

    def fn(y):
        result = concrete(**{input_name: tf.cast(tf.convert_to_tensor(y), input_dtype)})[output_name]
        return tf.cast(result, tf.float32)

    fn.metadata = metadata
    fn.signature = key
    fn.variables = list(concrete.variables)
    fn.keepalive = loaded
    return fn


# ----------------------------------------------------------------------------- LIR restorers


def load_restorer(path: str):
    """Loads a restorer SavedModel of :func:`tfinverse.training.lir.export_restorer` (LIR).

    The export takes images of any size (padded to a multiple of 4 inside, cropped back)
    and returns them restored, clipped to [0, 1].

    Args:
      path: the SavedModel directory (``<run>/restorer``).

    Returns:
      A callable ``fn(images)`` on float ``[n, H, W, C]`` arrays or tensors in [0, 1],
      returning float32 tensors of the same shape; ``fn.metadata`` holds the stored
      description (channels, and under ``"extra"`` the training settings).

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: if ``path`` is not a restorer export.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no restorer at {path!r}")
    metadata = _read_export_metadata(path, "tfinverse_restorer.json")
    if metadata is None:
        raise ValueError(f"{path!r} is not a tfinverse restorer export (no assets/tfinverse_restorer.json)")
    loaded = tf.saved_model.load(path)
    concrete = loaded.signatures[metadata.get("signature", "default")]

    def fn(images):
        return concrete(y=tf.cast(tf.convert_to_tensor(images), tf.float32))["default"]

    fn.metadata = metadata
    fn.keepalive = loaded
    return fn
