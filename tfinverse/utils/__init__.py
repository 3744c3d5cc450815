"""Helpers shared by the scripts: result writers and the command-line conventions."""

from tfinverse.utils.cli import (
    DATA_DIR_ENV,
    add_common_flags,
    flag_table,
    parse_common_args,
    prepare_output_dir,
    progress,
    resolve_log_dir,
    set_global_seed,
    summary_images,
    summary_scalar,
    summary_writer,
)
from tfinverse.utils.results import (
    atomic_write_bytes,
    atomic_write_text,
    markdown_table,
    save_image_grid,
    save_png,
    write_table,
)

__all__ = [
    "DATA_DIR_ENV",
    "add_common_flags",
    "flag_table",
    "parse_common_args",
    "prepare_output_dir",
    "progress",
    "resolve_log_dir",
    "set_global_seed",
    "summary_images",
    "summary_scalar",
    "summary_writer",
    "atomic_write_bytes",
    "atomic_write_text",
    "markdown_table",
    "save_image_grid",
    "save_png",
    "write_table",
]
