"""The command-line flags every script shares, and the output-folder policy.

A script builds its parser, adds its own flags, then::

    parser = argparse.ArgumentParser(description=__doc__)
    add_common_flags(parser, out_default="results/csgm")
    args = parse_common_args(parser)          # fills args.log_dir and args.data_dir
    out_dir = prepare_output_dir(args.out, args.overwrite)
    set_global_seed(args.seed)
    writer = summary_writer(args.log_dir)
    with writer.as_default():
        for step in progress(range(args.steps), desc="CSGM"):
            ...
            summary_scalar("loss", loss, step=step)

Output folders are never silently reused: a folder that holds files is refused unless
``--overwrite`` is given, and the result writers refuse to replace single files the same
way.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
from pathlib import Path
from typing import Iterable, Optional, Sequence

from tfinverse.errors import InputError, unknown_name
from tfinverse.utils.results import markdown_table

__all__ = [
    "positive_int",
    "positive_float",
    "DATA_DIR_ENV",
    "docstring_parser",
    "add_common_flags",
    "parse_common_args",
    "resolve_log_dir",
    "prepare_output_dir",
    "output_dir_or_exit",
    "add_run_flags",
    "configure_run",
    "start_tensorflow",
    "user_error_message",
    "run_script",
    "parse_spec",
    "parse_value",
    "coerce_parameters",
    "summary_writer",
    "summary_scalar",
    "summary_images",
    "flag_table",
    "set_global_seed",
    "progress",
    "parse_name_values",
]

# Fallback of --data-dir (read by parse_common_args), so a machine's dataset folder is given once.
DATA_DIR_ENV = "TFINVERSE_DATA_DIR"

_MAX_SEED = 2**32 - 1  # numpy's legacy global seed is 32 bits


def _seed_type(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from None
    if not 0 <= seed <= _MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2**32 - 1], got {seed}")
    return seed


def docstring_parser(doc: str) -> argparse.ArgumentParser:
    """A script's argument parser whose ``--help`` is its module docstring.

    Args:
      doc: the script's ``__doc__``: a one-paragraph summary, a blank line, then the rest
        (flag table, outputs, examples), which ``--help`` prints after the flags as written.

    Returns:
      An ``argparse.ArgumentParser`` with the summary as description and the rest as epilog.
    """
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_common_flags(
    parser: argparse.ArgumentParser, out_default: str = "results"
) -> argparse.ArgumentParser:
    """Adds ``--out``, ``--seed``, ``--data-dir``, ``--log-dir`` and ``--overwrite``.

    Args:
      parser: the script's parser.
      out_default: default output folder of this script.

    Returns:
      ``parser``, with the flags in an argument group "common options".
    """
    group = parser.add_argument_group("common options")
    group.add_argument("--out", default=out_default, help="output folder for images, tables and checkpoints")
    group.add_argument("--seed", type=_seed_type, default=0, help="random seed of every draw in the run")
    group.add_argument(
        "--data-dir",
        default=None,
        help=f"folder of local dataset copies (default: ${DATA_DIR_ENV}, else each loader's own default)",
    )
    group.add_argument(
        "--log-dir",
        default=None,
        help="TensorBoard log folder (default: <out>/logs)",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty output folder and replace existing files",
    )
    add_run_flags(parser)
    return parser


def add_run_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``--quiet``, ``--verbose`` and ``--debug`` (:func:`add_common_flags` calls it).

    ``--quiet`` turns progress bars off, ``--verbose`` lets TensorFlow print its start-up
    log (hidden by default: on a CPU-only machine it includes an alarming but harmless CUDA
    error), ``--debug`` shows the full traceback of a usage or data error instead of the
    one-line ``error:`` message (see :func:`run_script`).

    Args:
      parser: the script's parser.

    Returns:
      ``parser``, with the flags in an argument group "run options".
    """
    group = parser.add_argument_group("run options")
    group.add_argument("--quiet", action="store_true", help="no progress bars")
    group.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up log")
    group.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


def resolve_log_dir(args: argparse.Namespace) -> str:
    """The TensorBoard folder of parsed arguments: ``--log-dir``, else ``<out>/logs``.

    Args:
      args: arguments parsed from a parser with :func:`add_common_flags`.

    Returns:
      The folder path as a string.
    """
    if getattr(args, "log_dir", None):
        return str(args.log_dir)
    return os.path.join(str(args.out), "logs")


def parse_common_args(
    parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None
) -> argparse.Namespace:
    """Parses ``argv`` and fills in the defaults that depend on other values.

    ``args.log_dir`` becomes ``<out>/logs`` when not given (see :func:`resolve_log_dir`),
    and ``args.data_dir`` falls back to the environment variable ``TFINVERSE_DATA_DIR``
    (read here, not when the parser is built, so that generated flag tables show no
    machine-specific path).

    Args:
      parser: a parser with :func:`add_common_flags`.
      argv: the arguments; default ``sys.argv[1:]``.

    Returns:
      The parsed namespace.
    """
    args = parser.parse_args(argv)
    if hasattr(args, "out"):
        args.log_dir = resolve_log_dir(args)
    if getattr(args, "data_dir", None) is None:
        args.data_dir = os.environ.get(DATA_DIR_ENV) or None
    configure_run(args)
    return args


_QUIET = False  # set by configure_run from --quiet: progress() then shows no bars


def configure_run(args: argparse.Namespace) -> None:
    """Applies the run options of parsed flags: progress bars and TensorFlow's start-up log.

    Call it right after parsing (``parse_common_args`` does), before anything imports
    TensorFlow: unless ``args.verbose`` is set, TensorFlow is then imported and its devices
    listed with the process's stderr pointed at ``/dev/null``, which is the only way to
    hide the messages its C++ libraries print before their logging is set up.

    Args:
      args: parsed flags; ``quiet`` and ``verbose`` are read if present.
    """
    global _QUIET
    _QUIET = bool(getattr(args, "quiet", False))
    start_tensorflow(verbose=bool(getattr(args, "verbose", False)))


def start_tensorflow(verbose: bool = False):
    """Imports TensorFlow and initialises its devices, silently unless ``verbose``.

    TensorFlow 2.21's start-up messages (oneDNN, CPU features, "failed call to cuInit" on
    machines without a GPU) are written by C++ code before its log level is read, so
    ``TF_CPP_MIN_LOG_LEVEL`` alone does not hide them. Here file descriptor 2 is redirected
    while TensorFlow loads and lists its devices, then restored; errors raised meanwhile
    still reach the caller. Later C++ messages below ERROR are hidden by
    ``TF_CPP_MIN_LOG_LEVEL=2`` unless ``verbose``.

    Args:
      verbose: show everything.

    Returns:
      The ``tensorflow`` module.
    """
    if verbose:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # tensorflow-datasets reports missing copies through absl's Python logger before our own
    # one-line error says the same; keep absl to errors.
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreter): import as it is
        import tensorflow as tf

        return tf
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    return tf


def user_error_message(error: BaseException) -> Optional[str]:
    """The one-line message of an error that is the user's to fix, or None for a bug.

    Usage and data errors are :class:`tfinverse.errors.InputError` (a ``ValueError``),
    a missing dataset (``DatasetUnavailableError``), a missing file, a ``SystemExit``
    carrying an ``error: ...`` text, and an InputError raised inside a ``tf.data``
    pipeline (TensorFlow wraps it in an ``OpError`` whose text holds the original line).

    Args:
      error: the exception.

    Returns:
      The message without the ``error:`` prefix, or None.
    """
    if isinstance(error, SystemExit):
        return str(error.code).removeprefix("error: ") if isinstance(error.code, str) else None
    if isinstance(error, InputError):
        return str(error)
    registry = sys.modules.get("tfinverse.data.registry")
    if registry is not None and isinstance(error, registry.DatasetUnavailableError):
        return str(error)
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"no such file or folder: {error.filename}"
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.OpError):
        import re

        found = re.search(r"(?:InputError|UnknownNameError): (.*)", error.message or "")
        if found:
            return found.group(1).strip()
    return None


def run_script(main, argv: Optional[Sequence[str]] = None) -> int:
    """Runs a script's ``main(argv)`` and turns usage and data errors into one line.

    A script ends with ``sys.exit(run_script(main))``. An error the user can fix (see
    :func:`user_error_message`) prints ``error: <message>`` on stderr and gives exit status
    2, as argparse does for a bad flag; with ``--debug`` in ``argv`` it is raised with its
    traceback instead. Ctrl-C prints ``interrupted`` and gives 130. Any other exception is a
    bug and keeps its traceback.

    Args:
      main: the script's ``main(argv)``; an int it returns is the exit status, anything
        else (a run's summary, None) means 0.
      argv: the arguments; default ``sys.argv[1:]``.

    Returns:
      The exit status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        status = main(argv)
        return status if isinstance(status, int) and not isinstance(status, bool) else 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BaseException as error:  # noqa: BLE001 - re-raised unless it is the user's to fix
        if isinstance(error, SystemExit) and not isinstance(error.code, str):
            raise
        message = user_error_message(error)
        if message is None or "--debug" in argv:
            raise
        lines = message.strip().splitlines() or [type(error).__name__]
        # One line says what is wrong; a layout or list that the message carries follows indented.
        print(f"error: {lines[0]}", file=sys.stderr)
        for line in lines[1:]:
            print(f"  {line}", file=sys.stderr)
        return 2


def prepare_output_dir(path, overwrite: bool = False) -> Path:
    """Creates the output folder, refusing one that already holds files.

    With ``overwrite`` a non-empty folder is accepted as it is: nothing is deleted, and
    files the run writes replace those of the same name.

    Args:
      path: the folder.
      overwrite: accept a non-empty folder.

    Returns:
      The folder as a :class:`pathlib.Path`.

    Raises:
      ValueError: if the folder is not empty and ``overwrite`` is False (the message names
        ``--overwrite``), or ``path`` is an existing file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"output path {path} is a file, not a folder")
    if path.is_dir() and not overwrite and any(path.iterdir()):
        raise ValueError(
            f"output folder {path} is not empty; choose another --out or pass --overwrite to "
            "write into it (existing files of the same name will be replaced)"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_dir_or_exit(args: argparse.Namespace) -> Path:
    """:func:`prepare_output_dir` for ``args.out`` and ``args.overwrite``, refusals as a clean exit.

    Args:
      args: parsed flags with ``out`` and ``overwrite``.

    Returns:
      The output folder.

    Raises:
      SystemExit: with ``prepare_output_dir``'s message, prefixed ``error:``.
    """
    try:
        return prepare_output_dir(args.out, args.overwrite)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def summary_writer(log_dir):
    """A TensorBoard file writer for ``log_dir`` (created if missing).

    ``tf.summary.scalar`` and ``tf.summary.image`` need the ``tensorboard`` package, which
    tfinverse does not require; :func:`summary_scalar` and :func:`summary_images` write the
    same records with TensorFlow alone.

    Args:
      log_dir: the folder for event files.

    Returns:
      A ``tf.summary.SummaryWriter``; use it as ``with writer.as_default(): ...``.
    """
    import tensorflow as tf

    Path(log_dir).mkdir(parents=True, exist_ok=True)
    return tf.summary.create_file_writer(str(log_dir))


def _plugin_metadata(plugin_name: str, data_class: int, description: Optional[str]):
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(summary_description=description or "", data_class=data_class)
    metadata.plugin_data.plugin_name = plugin_name
    return metadata


def summary_scalar(name: str, data, step=None, description: Optional[str] = None):
    """Writes a scalar that TensorBoard shows in its Scalars tab, without ``tensorboard``.

    A drop-in for ``tf.summary.scalar``: it writes to the default writer (inside ``with
    writer.as_default():``) and works in ``tf.function``.

    Args:
      name: the tag, e.g. ``"loss/generator"``.
      data: a real scalar (number or rank-0 tensor); stored as float32.
      step: the step; default ``tf.summary.experimental.get_step()``.
      description: optional text shown by TensorBoard.

    Returns:
      True if written, False if there is no default writer.

    Raises:
      ValueError: if ``data`` is not a scalar.
    """
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    data = tf.convert_to_tensor(data)
    if data.shape.rank is not None and data.shape.rank != 0:
        raise ValueError(f"summary_scalar: data must be a scalar, got shape {data.shape.as_list()}")
    metadata = _plugin_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR, description)
    return tf.summary.write(tag=name, tensor=tf.cast(data, tf.float32), step=step, metadata=metadata)


def summary_images(name: str, images, step=None, max_outputs: int = 3, description: Optional[str] = None):
    """Writes images that TensorBoard shows in its Images tab, without ``tensorboard``.

    A drop-in for ``tf.summary.image``: float images in [0, 1] (clipped) are stored as PNG.

    Args:
      name: the tag.
      images: ``[batch, height, width, channels]`` with 1, 3 or 4 channels.
      step: the step; default ``tf.summary.experimental.get_step()``.
      max_outputs: how many images of the batch to keep.
      description: optional text shown by TensorBoard.

    Returns:
      True if written, False if there is no default writer.

    Raises:
      ValueError: for a shape that is not ``[batch, height, width, 1|3|4]``.
    """
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            "summary_images: images must have shape [batch, height, width, channels] with 1, 3 "
            f"or 4 channels, got {images.shape.as_list() if images.shape.rank is not None else 'unknown'}"
        )
    if images.dtype != tf.uint8:
        # Round to the nearest level, as save_png does (convert_image_dtype truncates).
        images = tf.cast(tf.round(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0) * 255.0), tf.uint8)
    images = images[:max_outputs]
    encoded = tf.map_fn(tf.image.encode_png, images, fn_output_signature=tf.string)
    # The image plugin's layout: [width, height, png_0, png_1, ...] as strings.
    size = tf.strings.as_string(tf.stack([tf.shape(images)[2], tf.shape(images)[1]]))
    tensor = tf.concat([size, encoded], axis=0)
    metadata = _plugin_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE, description)
    return tf.summary.write(tag=name, tensor=tensor, step=step, metadata=metadata)


def _default_text(action: argparse.Action) -> str:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "off" if action.default is False else "on"
    if action.default is None or action.default is argparse.SUPPRESS:
        return ""
    if isinstance(action.default, (list, tuple)):
        return " ".join(str(value) for value in action.default)
    return str(action.default)


def _help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    help_text = action.help or ""
    if "%" in help_text:
        params = {key: value for key, value in vars(action).items() if value is not argparse.SUPPRESS}
        params["prog"] = parser.prog
        if params.get("choices") is not None:
            params["choices"] = ", ".join(str(choice) for choice in params["choices"])
        help_text = help_text % params
    if action.choices is not None and "%(choices)" not in (action.help or ""):
        help_text = f"{help_text} (one of: {', '.join(str(choice) for choice in action.choices)})".strip()
    return help_text


def flag_table(parser: argparse.ArgumentParser) -> str:
    """A parser's flags as a Markdown table (flag, default, help) for a README.

    ``-h/--help`` is left out; positional arguments are listed by name. ``%(default)s``
    and the like in help texts are expanded as ``--help`` would.

    Args:
      parser: the parser.

    Returns:
      The table as Markdown text.
    """
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help is argparse.SUPPRESS:
            continue
        names = action.option_strings or [action.dest]
        rows.append(
            {
                "flag": ", ".join(f"`{name}`" for name in names),
                "default": f"`{_default_text(action)}`" if _default_text(action) else "",
                "help": _help_text(parser, action),
            }
        )
    return markdown_table(rows, columns=["flag", "default", "help"])


def set_global_seed(seed: int, deterministic_ops: bool = False):
    """Seeds Python's ``random``, numpy's global generator and TensorFlow's global seed.

    The library itself draws from explicit seeds; this covers third-party code and Keras
    initialisers that use the global generators.

    Args:
      seed: an integer in ``[0, 2**32 - 1]``.
      deterministic_ops: also ask TensorFlow for deterministic kernels
        (``tf.config.experimental.enable_op_determinism``), slower on some ops.

    Returns:
      ``np.random.default_rng(seed)``, for draws the caller makes itself.

    Raises:
      ValueError: if ``seed`` is not an integer in range.
    """
    import numpy as np

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= _MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
    import tensorflow as tf

    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    return np.random.default_rng(seed)


def _stdout_is_terminal() -> bool:
    try:
        return bool(sys.stdout.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def progress(iterable: Optional[Iterable] = None, force: bool = False, **tqdm_kwargs):
    """A tqdm progress bar that stays quiet when stdout is not a terminal, or under ``--quiet``.

    In CI logs and redirected output the bar would print a line per refresh; there it is
    disabled unless ``force`` is set. ``--quiet`` (see :func:`configure_run`) disables
    every bar. An explicit ``disable=`` in ``tqdm_kwargs`` wins.

    Args:
      iterable: what to iterate over (may be None with ``total=`` for manual updates).
      force: show the bar even when stdout is not a terminal.
      **tqdm_kwargs: passed to ``tqdm.tqdm`` (``desc``, ``total``, ``file``, ...).

    Returns:
      The ``tqdm.tqdm`` object; iterate over it, or call ``update``/``set_postfix``.
    """
    from tqdm import tqdm

    if "disable" not in tqdm_kwargs:
        tqdm_kwargs["disable"] = _QUIET or not (force or _stdout_is_terminal())
    return tqdm(iterable, **tqdm_kwargs)

def positive_int(text: str) -> int:
    """Parses a flag value that must be a positive integer.

    Args:
      text: the command-line text.

    Returns:
      The integer.

    Raises:
      argparse.ArgumentTypeError: for anything else.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """Parses a flag value that must be a finite positive number.

    Args:
      text: the command-line text.

    Returns:
      The number.

    Raises:
      argparse.ArgumentTypeError: for anything else.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def parse_name_values(items, flag: str = "--task-option") -> dict:
    """``["noise_std=0.5", "variant=banana"]`` -> ``{"noise_std": 0.5, "variant": "banana"}``.

    Values are Python literals when they parse as one, else strings.

    Args:
      items: ``NAME=VALUE`` strings (None or empty gives ``{}``).
      flag: the flag the items came from, for the error message.

    Returns:
      The options as a dict.

    Raises:
      ValueError: for an item without ``=``.
    """
    import ast

    options = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"{flag} must be NAME=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        options[key.strip()] = value
    return options


_WORDS = {"true": True, "false": False, "none": None}


def parse_value(text: str):
    """A command-line value as a Python value: int, float, bool, None, tuple/list, or string.

    ``nan`` and ``inf`` parse as floats (so that a check can refuse them by name), quoted
    text as a string, anything else that is not a literal as the string itself.

    Args:
      text: the value's text.

    Returns:
      The value.
    """
    import ast

    text = text.strip()
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)  # also nan, inf, 1e-3
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_spec(spec: str, flag: str) -> tuple:
    """``name:key=value,key=value`` -> ``(name, {key: value})`` with :func:`parse_value` values.

    Args:
      spec: the text, e.g. ``"super_resolution:factor=8,noise=0.04"``.
      flag: the flag it came from, for messages.

    Returns:
      ``(name, params)``.

    Raises:
      InputError: for an empty name or an item without ``=``.
    """
    name, _, rest = spec.partition(":")
    if not name.strip():
        raise InputError(f"{flag} {spec!r}: expected NAME[:key=value,...]")
    params = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InputError(f"{flag} {spec!r}: expected key=value, got {item!r}")
        params[key.strip()] = parse_value(value)
    return name.strip(), params


def coerce_parameters(what: str, params: dict, signature_of, skip: Iterable[str] = ()) -> dict:
    """Checks parsed ``key=value`` parameters against a constructor's signature.

    Names the constructor does not take are refused with the list of those it takes. Values
    are converted to the type of the parameter's default where that is a number or a bool:
    an integer parameter refuses ``abc`` and ``2.5``, a float parameter refuses ``nan`` and
    ``inf``, a bool takes ``true``/``false``/``1``/``0``.

    Args:
      what: what the parameters are for, in messages (``"--tasks sr:factor=abc"``).
      params: the parsed parameters.
      signature_of: the callable (class or function) whose keyword parameters are valid.
      skip: parameter names that are not the user's to set (``image_shape``, ``seed``, ...).

    Returns:
      A new dict of converted values.

    Raises:
      UnknownNameError: for a name the constructor does not take.
      InputError: for a value of the wrong type or a non-finite number.
    """
    import inspect

    accepted = {
        name: parameter
        for name, parameter in inspect.signature(signature_of).parameters.items()
        if name not in ("self", *skip) and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
    converted = {}
    for key, value in params.items():
        if key not in accepted:
            raise unknown_name("parameter", key, accepted, where=what)
        default = accepted[key].default
        converted[key] = _coerce(what, key, value, default)
    return converted


def _coerce(what: str, key: str, value, default):
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise InputError(f"{what}: {key} must be true or false, got {value!r}")
    if isinstance(default, int):
        whole = (
            isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value == int(value)
        )
        if not whole:
            raise InputError(f"{what}: {key} must be an integer, got {value!r}")
        return int(value)
    if isinstance(default, float) or (isinstance(value, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(default, float):
                raise InputError(f"{what}: {key} must be a number, got {value!r}")
            return value
        if not math.isfinite(value):
            raise InputError(f"{what}: {key} must be a finite number, got {value!r}")
        return float(value) if isinstance(default, float) else value
    return value
