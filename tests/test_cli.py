"""Common flags, output-folder policy, TensorBoard writer, flag tables, seeding, progress bars."""

import argparse
import glob
import io
import random
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tfinverse.utils import cli


def make_parser(monkeypatch=None, data_dir_env=None):
    if monkeypatch is not None:
        if data_dir_env is None:
            monkeypatch.delenv(cli.DATA_DIR_ENV, raising=False)
        else:
            monkeypatch.setenv(cli.DATA_DIR_ENV, data_dir_env)
    parser = argparse.ArgumentParser(prog="csgm")
    cli.add_common_flags(parser, out_default="results/csgm")
    return parser


def test_common_flags_defaults(monkeypatch):
    args = cli.parse_common_args(make_parser(monkeypatch), [])
    assert args.out == "results/csgm"
    assert args.seed == 0
    assert args.data_dir is None
    assert args.overwrite is False
    assert args.log_dir == "results/csgm/logs"


def test_common_flags_explicit_values_and_environment_default(monkeypatch):
    parser = make_parser(monkeypatch, data_dir_env="/data/tfds")
    args = cli.parse_common_args(parser, ["--out", "o", "--seed", "7", "--overwrite"])
    got = (args.out, args.seed, args.overwrite, args.data_dir, args.log_dir)
    assert got == ("o", 7, True, "/data/tfds", "o/logs")
    args = cli.parse_common_args(parser, ["--data-dir", "/d", "--log-dir", "/tb"])
    assert args.data_dir == "/d" and args.log_dir == "/tb"
    plain = parser.parse_args(["--out", "x"])
    assert plain.log_dir is None and cli.resolve_log_dir(plain) == "x/logs"
    # The environment is read at parse time, so flag tables never show a local path.
    assert plain.data_dir is None and "/data/tfds" not in cli.flag_table(parser)


@pytest.mark.parametrize("bad_seed", ["-1", "abc", str(2**32)])
def test_bad_seed_flag_is_a_usage_error(monkeypatch, capsys, bad_seed):
    with pytest.raises(SystemExit):
        make_parser(monkeypatch).parse_args(["--seed", bad_seed])
    assert "seed" in capsys.readouterr().err


def test_prepare_output_dir_policy(tmp_path):
    fresh = cli.prepare_output_dir(tmp_path / "a" / "b", overwrite=False)
    assert fresh.is_dir() and fresh == tmp_path / "a" / "b"
    assert cli.prepare_output_dir(fresh, overwrite=False) == fresh  # empty: fine
    (fresh / "result.png").write_bytes(b"old")
    with pytest.raises(ValueError, match="--overwrite"):
        cli.prepare_output_dir(fresh, overwrite=False)
    assert cli.prepare_output_dir(fresh, overwrite=True) == fresh
    assert (fresh / "result.png").read_bytes() == b"old"  # nothing is deleted
    with pytest.raises(ValueError, match="is a file"):
        cli.prepare_output_dir(fresh / "result.png", overwrite=True)


def read_events(log_dir):
    event_files = glob.glob(str(log_dir / "events.out.tfevents.*"))
    assert len(event_files) == 1
    return [
        (event.step, value)
        for event in tf.compat.v1.train.summary_iterator(event_files[0])
        for value in event.summary.value
    ]


def test_summary_writer_records_scalars_for_the_scalars_plugin(tmp_path):
    log_dir = tmp_path / "logs"
    writer = cli.summary_writer(log_dir)

    @tf.function
    def log_in_graph(value, step):
        cli.summary_scalar("loss/g", value * 2.0, step=step)

    with writer.as_default():
        for step, value in enumerate([3.0, 1.5]):
            assert cli.summary_scalar("loss/d", np.float64(value), step=step, description="D loss")
        log_in_graph(tf.constant(0.125), tf.constant(2, tf.int64))
    writer.close()
    found = {}
    for step, value in read_events(log_dir):
        found[(value.tag, step)] = float(tf.make_ndarray(value.tensor))
        if value.HasField("metadata"):  # stored with the first record of a tag
            assert value.metadata.plugin_data.plugin_name == "scalars"
            assert value.metadata.data_class == summary_pb2.DATA_CLASS_SCALAR
    assert found == {("loss/d", 0): 3.0, ("loss/d", 1): 1.5, ("loss/g", 2): 0.25}
    with pytest.raises(ValueError, match="scalar"):
        cli.summary_scalar("bad", [1.0, 2.0], step=0)
    assert not bool(cli.summary_scalar("no_writer", 1.0, step=0))  # no default writer: nothing written


def test_summary_images_store_pngs_for_the_images_plugin(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((5, 6, 7, 3)).astype(np.float32)
    writer = cli.summary_writer(tmp_path)
    with writer.as_default():
        cli.summary_images("samples", images, step=4, max_outputs=2)
    writer.close()
    (step, value), = read_events(tmp_path)
    assert step == 4 and value.tag == "samples"
    assert value.metadata.plugin_data.plugin_name == "images"
    blobs = tf.make_ndarray(value.tensor)
    assert blobs[0] == b"7" and blobs[1] == b"6" and len(blobs) == 4  # width, height, 2 PNGs
    for blob, image in zip(blobs[2:], images):
        decoded = tf.io.decode_png(blob).numpy()
        np.testing.assert_allclose(decoded / 255.0, image, atol=0.5 / 255 + 1e-6)
    with pytest.raises(ValueError, match=r"\[batch, height, width, channels\]"):
        cli.summary_images("bad", images[0], step=0)


def parse_markdown(text):
    lines = text.strip().splitlines()
    return [[cell.strip() for cell in line.strip()[1:-1].split(" | ")] for line in lines]


def test_flag_table_lists_every_flag_with_default_and_help(monkeypatch):
    parser = make_parser(monkeypatch)
    parser.add_argument("task", help="what to solve")
    parser.add_argument("--steps", type=int, default=1800, help="Adam steps (default %(default)s)")
    parser.add_argument("--prior", choices=["began", "pggan"], default="began", help="generator prior")
    parser.add_argument("--ratio", default=0.1, help="a | b")
    parser.add_argument("--hidden", help=argparse.SUPPRESS)
    table = parse_markdown(cli.flag_table(parser))
    assert table[0] == ["flag", "default", "help"]
    rows = {row[0]: row[1:] for row in table[2:]}
    assert "`-h`, `--help`" not in rows and "`--hidden`" not in rows
    assert rows["`task`"] == ["", "what to solve"]
    assert rows["`--steps`"] == ["`1800`", "Adam steps (default 1800)"]
    assert rows["`--prior`"] == ["`began`", "generator prior (one of: began, pggan)"]
    assert rows["`--ratio`"] == ["`0.1`", "a \\| b"]
    assert rows["`--out`"][0] == "`results/csgm`"
    assert rows["`--overwrite`"][0] == "`off`"
    assert rows["`--log-dir`"] == ["", "TensorBoard log folder (default: <out>/logs)"]
    common = ["`--out`", "`--seed`", "`--data-dir`", "`--log-dir`", "`--overwrite`", "`--quiet`", "`--verbose`",
              "`--debug`"]
    assert list(rows) == common + ["`task`", "`--steps`", "`--prior`", "`--ratio`"]


def draws():
    return (
        [random.random() for _ in range(3)],
        np.random.rand(3).tolist(),
        tf.random.uniform([3]).numpy().tolist(),
    )


def test_set_global_seed_makes_every_generator_repeat():
    rng = cli.set_global_seed(123)
    first = draws()
    np.testing.assert_array_equal(rng.random(4), np.random.default_rng(123).random(4))
    cli.set_global_seed(123)
    assert draws() == first
    cli.set_global_seed(124)
    second = draws()
    assert all(a != b for a, b in zip(first, second))


@pytest.mark.parametrize("bad_seed", [-1, 2**32, 1.5, "3", True])
def test_set_global_seed_rejects_bad_seeds(bad_seed):
    with pytest.raises(ValueError, match="seed"):
        cli.set_global_seed(bad_seed)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_silent_off_a_terminal_unless_forced(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    sink = io.StringIO()
    bar = cli.progress(range(5), file=sink, desc="steps")
    assert bar.disable and list(bar) == [0, 1, 2, 3, 4]
    assert sink.getvalue() == ""

    forced = cli.progress(range(5), file=sink, desc="steps", force=True)
    assert not forced.disable and list(forced) == [0, 1, 2, 3, 4]
    assert "steps" in sink.getvalue() and "5/5" in sink.getvalue()

    monkeypatch.setattr(sys, "stdout", FakeTerminal())
    on_terminal = cli.progress(range(2), file=io.StringIO())
    assert not on_terminal.disable
    list(on_terminal)
    explicit = cli.progress(range(2), file=io.StringIO(), disable=True)
    assert explicit.disable


def test_progress_with_manual_updates(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    sink = io.StringIO()
    with cli.progress(total=4, file=sink, force=True) as bar:
        bar.update(3)
        bar.set_postfix(loss=0.5)
    assert bar.n == 3 and "loss=0.5" in sink.getvalue()


@pytest.mark.parametrize("text, expected", [("1", 1), ("42", 42)])
def test_positive_int_accepts_positive_integers(text, expected):
    assert cli.positive_int(text) == expected


@pytest.mark.parametrize("text", ["0", "-3", "2.5", "two", ""])
def test_positive_int_rejects_everything_else(text):
    with pytest.raises(argparse.ArgumentTypeError, match="positive integer"):
        cli.positive_int(text)


@pytest.mark.parametrize("text", ["0", "-1e-3", "nan", "inf", "x"])
def test_positive_float_rejects_non_positive_and_non_finite(text):
    with pytest.raises(argparse.ArgumentTypeError, match="positive number"):
        cli.positive_float(text)


def test_positive_float_parses_scientific_notation():
    assert cli.positive_float("1e-4") == pytest.approx(1e-4)


def test_docstring_parser_splits_summary_and_the_rest():
    doc = "One-line summary.\n\nFlags table\n  kept   as written.\n\nExamples::\n\n    run it"
    parser = cli.docstring_parser(doc)
    assert parser.description == "One-line summary."
    assert parser.epilog == "Flags table\n  kept   as written.\n\nExamples::\n\n    run it"
    assert "kept   as written." in parser.format_help()  # raw formatting keeps the spacing


def test_output_dir_or_exit_refuses_a_non_empty_folder_without_overwrite(tmp_path):
    (tmp_path / "old.txt").write_text("keep")
    args = argparse.Namespace(out=str(tmp_path), overwrite=False)
    with pytest.raises(SystemExit, match=r"^error: output folder .* --overwrite"):
        cli.output_dir_or_exit(args)
    assert (tmp_path / "old.txt").read_text() == "keep"
    args.overwrite = True
    assert cli.output_dir_or_exit(args) == tmp_path
    fresh = tmp_path / "new" / "run"
    assert cli.output_dir_or_exit(argparse.Namespace(out=str(fresh), overwrite=False)) == fresh and fresh.is_dir()
