"""Writers for experiment outputs: PNG images and grids, and tables as CSV, JSON and Markdown.

Every writer is atomic (the data go to a temporary file in the target folder, which then
replaces the target in one ``os.replace``), so an interrupted run never leaves a
half-written file, and every writer refuses to replace an existing file unless
``overwrite=True`` (the scripts' ``--overwrite`` flag). Parent folders are created.

Images are float arrays in [0, 1], ``[height, width]``, ``[height, width, 1]`` or
``[height, width, 3]`` (RGB); values outside [0, 1] are clipped and stored as 8-bit PNG.
OpenCV draws the grids and their text (no matplotlib); its Hershey fonts are ASCII only, so
a few common symbols are spelled out and other non-ASCII characters become ``?``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

__all__ = [
    "reported_figure",
    "npz_bytes",
    "atomic_write_bytes",
    "atomic_write_text",
    "save_png",
    "save_image_grid",
    "markdown_table",
    "write_table",
]

PathLike = Union[str, os.PathLike]

_TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def reported_figure(path: PathLike, failures: Optional[List[str]] = None):
    """Runs the code that draws one figure; if it fails, says so and goes on.

    Every script writes its tables and arrays first, then its figures inside this guard,
    so a plotting problem (a missing ``matplotlib``, a layout error) never costs the
    numbers. ``KeyboardInterrupt`` and ``SystemExit`` still stop the run.

    Args:
      path: the figure's file, for the message.
      failures: optional list that receives one line per failed figure (for a run's notes).

    Yields:
      Nothing; write the figure inside the ``with`` block.
    """
    try:
        yield
    except Exception as error:  # noqa: BLE001 - a figure is never worth the run's results
        message = f"could not write figure {path}: {type(error).__name__}: {error}"
        print(f"warning: {message}", file=sys.stderr)
        if failures is not None:
            failures.append(message)


def npz_bytes(arrays: Mapping[str, Any]) -> bytes:
    """Arrays as the bytes of a compressed ``.npz`` file, to be written atomically.

    Args:
      arrays: ``{name: array}``.

    Returns:
      The file content (write it with :func:`atomic_write_bytes`).
    """
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _refuse_existing(path: Path) -> None:
    raise FileExistsError(
        f"{path} already exists; pass overwrite=True (--overwrite on the command line) to replace it"
    )


def atomic_write_bytes(path: PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Writes ``data`` to ``path`` atomically.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the file
    is then moved onto ``path`` in one step; readers see either the old file or the whole
    new one. Without ``overwrite`` the move is a hard link, which fails if ``path`` appeared
    in the meantime, so two writers cannot clobber each other.

    Args:
      path: the file to write; missing parent folders are created.
      data: the content.
      overwrite: replace an existing file.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
      TypeError: if ``data`` is not bytes-like.
    """
    path = Path(path)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"atomic_write_bytes needs bytes, got {type(data).__name__}")
    if path.exists() and not overwrite:
        _refuse_existing(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the permissions of a normal file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        if overwrite:
            os.replace(temp_name, path)
        else:
            try:
                os.link(temp_name, path)
            except FileExistsError:
                _refuse_existing(path)
            except OSError:
                # File systems without hard links: check, then replace.
                if path.exists():
                    _refuse_existing(path)
                os.replace(temp_name, path)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
    return path


def atomic_write_text(path: PathLike, text: str, overwrite: bool = False, encoding: str = "utf-8") -> Path:
    """Writes ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`).

    Args:
      path: the file to write; missing parent folders are created.
      text: the content.
      overwrite: replace an existing file.
      encoding: text encoding.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
      TypeError: if ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text needs a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite)


# ----------------------------------------------------------------------------- images


def _image_to_uint8(image, where: str) -> np.ndarray:
    """A float image in [0, 1] as uint8 ``[H, W, C]`` with C in {1, 3} (RGB order)."""
    if hasattr(image, "numpy"):
        image = image.numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3) or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{where}: an image must have shape [height, width], [height, width, 1] or "
            f"[height, width, 3], got {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{where}: image values must be real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{where}: the image contains NaN or Inf values")
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


def _encode_png(image_uint8: np.ndarray) -> bytes:
    import cv2

    if image_uint8.shape[2] == 3:
        image_uint8 = image_uint8[:, :, ::-1]  # OpenCV stores BGR
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image_uint8))
    if not ok:
        raise RuntimeError("OpenCV could not encode the PNG")
    return encoded.tobytes()


def save_png(path: PathLike, image, overwrite: bool = False) -> Path:
    """Saves one float image in [0, 1] as an 8-bit PNG (grey or RGB).

    Args:
      path: the ``.png`` file to write.
      image: ``[height, width]``, ``[height, width, 1]`` or ``[height, width, 3]`` (RGB),
        numpy array or tensor; values are clipped to [0, 1] and rounded to 8 bits.
      overwrite: replace an existing file.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Raises:
      ValueError: for a bad shape or NaN/Inf values.
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
    """
    return atomic_write_bytes(path, _encode_png(_image_to_uint8(image, "save_png")), overwrite=overwrite)


_ASCII_REPLACEMENTS = {
    "\u00d7": "x",  # multiplication sign
    "\u03c3": "sigma",
    "\u00b5": "u",
    "\u03bc": "u",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u00b1": "+/-",
    "\u2192": "->",
    "\u2248": "~",
    "\u00b0": "deg",
}


def _ascii_text(text: str) -> str:
    return "".join(ch if ord(ch) < 128 else _ASCII_REPLACEMENTS.get(ch, "?") for ch in str(text))


class _TextStyle:
    """Font metrics for the grid's labels."""

    def __init__(self, font_scale: float):
        import cv2

        self.cv2 = cv2
        self.font = cv2.FONT_HERSHEY_SIMPLEX
        self.scale = font_scale
        self.thickness = 1
        (_, height), baseline = cv2.getTextSize("Ag", self.font, self.scale, self.thickness)
        self.line_height = height + baseline + 4

    def width(self, text: Optional[str]) -> int:
        if not text:
            return 0
        (width, _), _ = self.cv2.getTextSize(_ascii_text(text), self.font, self.scale, self.thickness)
        return width

    def draw(self, canvas: np.ndarray, text: Optional[str], left: int, top: int, box_width: int) -> None:
        """Draws ``text`` centred horizontally in ``[left, left + box_width)`` below ``top``."""
        if not text:
            return
        text = _ascii_text(text)
        (width, height), _ = self.cv2.getTextSize(text, self.font, self.scale, self.thickness)
        x = left + max(0, (box_width - width) // 2)
        y = top + 2 + height
        colour = (0,) * canvas.shape[2]
        self.cv2.putText(
            canvas, text, (x, y), self.font, self.scale, colour, self.thickness, self.cv2.LINE_AA
        )


def _grid_cells(rows, captions) -> List[List[Optional[np.ndarray]]]:
    if isinstance(rows, np.ndarray) or hasattr(rows, "numpy"):
        rows = list(rows)  # a [rows, cols, H, W, C] array
    if len(rows) == 0:
        raise ValueError("save_image_grid: rows is empty; give a list of rows, each a list of images")
    cells = []
    for i, row in enumerate(rows):
        if hasattr(row, "numpy"):
            row = row.numpy()
        if isinstance(row, np.ndarray) and row.ndim in (2, 3) and (row.ndim == 2 or row.shape[-1] in (1, 3)):
            raise ValueError(
                f"save_image_grid: row {i} is a single image of shape {row.shape}; rows must be "
                "lists of images (wrap it as [image])"
            )
        where = f"save_image_grid row {i}"
        cells.append([None if image is None else _image_to_uint8(image, where) for image in row])
    if all(image is None for row in cells for image in row):
        raise ValueError("save_image_grid: the grid holds no image")
    if captions is not None:
        if len(captions) > len(cells) or any(len(c) > len(r) for c, r in zip(captions, cells)):
            raise ValueError("save_image_grid: captions must have the layout of rows (one list per row)")
    return cells


def _fit_nearest(image: np.ndarray, cell_height: int, cell_width: int) -> np.ndarray:
    """Nearest-neighbour resize to the largest size that fits the cell, aspect kept."""
    import cv2

    height, width = image.shape[:2]
    factor = min(cell_height / height, cell_width / width)
    new_height = max(1, min(cell_height, int(round(height * factor))))
    new_width = max(1, min(cell_width, int(round(width * factor))))
    if (new_height, new_width) == (height, width):
        return image
    resized = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_NEAREST)
    return resized.reshape(new_height, new_width, image.shape[2])


def save_image_grid(
    path: PathLike,
    rows,
    row_labels: Optional[Sequence[Optional[str]]] = None,
    col_labels: Optional[Sequence[Optional[str]]] = None,
    captions: Optional[Sequence[Sequence[Optional[str]]]] = None,
    scale: Optional[int] = None,
    min_cell_size: int = 96,
    padding: int = 4,
    font_scale: float = 0.4,
    overwrite: bool = False,
) -> Path:
    """Writes a PNG grid of images with column titles, row labels and per-cell captions.

    All cells share one size: the largest image height and width in the grid times
    ``scale``. Smaller images (a 4x4 low-resolution observation beside a 64x64
    reconstruction) are enlarged with nearest neighbour to fill the cell, keeping their
    aspect ratio, so their pixels stay visible as blocks. Grey images are shown as grey in an
    RGB grid. Rows may have different lengths and ``None`` leaves a cell blank. Columns widen
    to fit their longest title or caption.

    Args:
      path: the ``.png`` file to write.
      rows: a list of rows, each a list of images in [0, 1] (``[H, W]``, ``[H, W, 1]`` or
        ``[H, W, 3]``) or ``None``; a ``[rows, cols, H, W, C]`` array also works.
      row_labels: one text per row, drawn to the left of the row.
      col_labels: one title per column, drawn above the first row.
      captions: texts under the cells, laid out like ``rows`` (e.g. ``"PSNR 23.41 dB"``);
        ``None`` entries and short rows leave the space empty.
      scale: integer enlargement of the cell; ``None`` picks the smallest factor that makes
        the cell's longer side at least ``min_cell_size`` pixels.
      min_cell_size: target cell size in pixels when ``scale`` is None.
      padding: pixels of white between cells and around the grid.
      font_scale: OpenCV font scale of the text (0.4 is about 10 px high).
      overwrite: replace an existing file.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Raises:
      ValueError: for an empty grid, a bad image shape, NaN/Inf values, labels that do not
        match the grid, or a scale below 1.
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
    """
    cells = _grid_cells(rows, captions)
    n_rows = len(cells)
    n_cols = max(len(row) for row in cells)
    if row_labels is not None and len(row_labels) != n_rows:
        raise ValueError(f"save_image_grid: {len(row_labels)} row_labels for {n_rows} rows")
    if col_labels is not None and len(col_labels) > n_cols:
        raise ValueError(f"save_image_grid: {len(col_labels)} col_labels for {n_cols} columns")
    images = [image for row in cells for image in row if image is not None]
    base_height = max(image.shape[0] for image in images)
    base_width = max(image.shape[1] for image in images)
    if scale is None:
        scale = max(1, math.ceil(min_cell_size / max(base_height, base_width)))
    if int(scale) != scale or scale < 1:
        raise ValueError(f"save_image_grid: scale must be an integer >= 1, got {scale}")
    cell_height, cell_width = base_height * int(scale), base_width * int(scale)
    channels = 3 if any(image.shape[2] == 3 for image in images) else 1

    style = _TextStyle(font_scale)
    caption_rows = [list(c) + [None] * (n_cols - len(c)) for c in captions] if captions is not None else []
    caption_rows += [[None] * n_cols] * (n_rows - len(caption_rows))
    has_captions = any(text for row in caption_rows for text in row)
    col_titles = list(col_labels or []) + [None] * (n_cols - len(col_labels or []))
    has_titles = any(col_titles)
    has_row_labels = row_labels is not None and any(row_labels)

    col_widths = [
        max(
            [cell_width, style.width(col_titles[j])]
            + [style.width(caption_rows[i][j]) for i in range(n_rows)]
        )
        for j in range(n_cols)
    ]
    label_width = max(style.width(label) for label in row_labels) + padding if has_row_labels else 0
    title_height = style.line_height if has_titles else 0
    caption_height = style.line_height if has_captions else 0
    row_height = cell_height + caption_height

    canvas_height = padding + title_height + n_rows * (row_height + padding)
    canvas_width = padding + label_width + sum(col_widths) + n_cols * padding
    canvas = np.full((canvas_height, canvas_width, channels), 255, np.uint8)

    col_lefts = []
    left = padding + label_width
    for width in col_widths:
        col_lefts.append(left)
        left += width + padding
    for j in range(n_cols):
        style.draw(canvas, col_titles[j], col_lefts[j], padding, col_widths[j])
    for i, row in enumerate(cells):
        top = padding + title_height + i * (row_height + padding)
        if has_row_labels and row_labels[i]:
            text_top = top + max(0, (cell_height - style.line_height) // 2)
            style.draw(canvas, row_labels[i], padding, text_top, label_width - padding)
        for j in range(n_cols):
            image = row[j] if j < len(row) else None
            if image is not None:
                fitted = _fit_nearest(image, cell_height, cell_width)
                if fitted.shape[2] != channels:
                    fitted = np.repeat(fitted, channels, axis=2)
                y0 = top + (cell_height - fitted.shape[0]) // 2
                x0 = col_lefts[j] + (col_widths[j] - fitted.shape[1]) // 2
                canvas[y0 : y0 + fitted.shape[0], x0 : x0 + fitted.shape[1]] = fitted
            style.draw(canvas, caption_rows[i][j], col_lefts[j], top + cell_height, col_widths[j])
    return atomic_write_bytes(path, _encode_png(canvas), overwrite=overwrite)


# ----------------------------------------------------------------------------- tables


def _plain_value(value: Any) -> Any:
    """numpy and tensor scalars as Python values; float32 keeps its shortest decimal form."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        return _plain_value(value[()]) if value.ndim == 0 else [_plain_value(v) for v in value]
    if isinstance(value, np.floating) and value.dtype != np.float64:
        # str() of a float32 is its shortest decimal (23.41, not 23.40999984741211).
        return float(str(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _columns(rows: Sequence[Mapping[str, Any]], columns: Optional[Sequence[str]]) -> List[str]:
    if columns is not None:
        return list(columns)
    names: Dict[str, None] = {}
    for row in rows:
        for key in row:
            names.setdefault(str(key), None)
    return list(names)


def _check_rows(rows, where: str) -> List[Mapping[str, Any]]:
    rows = list(rows)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: rows must be a list of dicts, row {i} is a {type(row).__name__}")
    return rows


def _format_cell(value: Any, floatfmt: str) -> str:
    value = _plain_value(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return format(value, floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _is_numeric(value: Any) -> bool:
    value = _plain_value(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Optional[Sequence[str]] = None,
    floatfmt: Union[str, Mapping[str, str]] = ".4g",
) -> str:
    """Renders rows as a GitHub Markdown table.

    Columns holding only numbers are right-aligned, others left-aligned; cells are padded so
    the raw text lines up too. Missing values and ``None`` are empty; ``|`` in text is
    escaped.

    Args:
      rows: a list of dicts, one per table row.
      columns: the columns in order; default the keys in order of first appearance.
      floatfmt: a ``format`` spec for floats (``".4g"`` gives 23.41, 0.8234, 0.001234), or a
        dict of specs per column (columns not in it use ``".4g"``).

    Returns:
      The table, one line per row plus the header and rule lines, ending in a newline.

    Raises:
      ValueError: if a row is not a dict or there are no columns.
    """
    rows = _check_rows(rows, "markdown_table")
    names = _columns(rows, columns)
    if not names:
        raise ValueError("markdown_table: no columns (rows is empty and no columns were given)")

    def spec(name):
        return floatfmt.get(name, ".4g") if isinstance(floatfmt, Mapping) else floatfmt

    body = [[_format_cell(row.get(name), spec(name)) for name in names] for row in rows]
    header = [name.replace("|", "\\|") for name in names]
    numeric = [
        any(row.get(name) is not None for row in rows)
        and all(row.get(name) is None or _is_numeric(row.get(name)) for row in rows)
        for name in names
    ]
    widths = [max([len(header[j]), 3] + [len(line[j]) for line in body]) for j in range(len(names))]

    def line(cells):
        padded = [cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(cells, widths, numeric)]
        return "| " + " | ".join(padded) + " |"

    rules = [("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric)]
    rule = "| " + " | ".join(rules) + " |"
    return "\n".join([line(header), rule] + [line(cells) for cells in body]) + "\n"


def _json_value(value: Any) -> Any:
    value = _plain_value(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def write_table(
    out_dir: PathLike,
    name: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Optional[Sequence[str]] = None,
    floatfmt: Union[str, Mapping[str, str]] = ".4g",
    overwrite: bool = False,
) -> str:
    """Writes rows as ``<name>.csv``, ``<name>.json`` and ``<name>.md`` in ``out_dir``.

    The CSV keeps full precision (Python's shortest round-trip form; float32 values keep
    their own shortest form), with an empty field for a missing value. The JSON is a list of
    objects; it stays strict JSON by writing non-finite floats (an infinite PSNR of a
    perfect reconstruction, SIR of one source) as the strings ``"inf"``, ``"-inf"``,
    ``"nan"``. The Markdown is :func:`markdown_table`. All three are checked before any is
    written, so a refusal leaves nothing behind.

    Args:
      out_dir: the folder; created if missing.
      name: the file stem, without extension or folder.
      rows: a list of dicts, one per row.
      columns: the columns in order; default the keys in order of first appearance.
      floatfmt: float format of the Markdown table (see :func:`markdown_table`).
      overwrite: replace existing files.

    Returns:
      The Markdown table.

    Raises:
      ValueError: for a name with a folder part, rows that are not dicts, or no columns.
      FileExistsError: if one of the files exists and ``overwrite`` is False.
    """
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"write_table: name must be a plain file stem like 'psnr_table', got {name!r}")
    rows = _check_rows(rows, "write_table")
    names = _columns(rows, columns)
    markdown = markdown_table(rows, names, floatfmt)
    out_dir = Path(out_dir)
    targets = {ext: out_dir / f"{name}.{ext}" for ext in ("csv", "json", "md")}
    if not overwrite:
        for target in targets.values():
            if target.exists():
                _refuse_existing(target)

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _plain_value(row.get(key)) for key in names})
    json_rows = [{key: _json_value(row.get(key)) for key in names if key in row} for row in rows]

    atomic_write_text(targets["csv"], buffer.getvalue(), overwrite=overwrite)
    json_text = json.dumps(json_rows, indent=2, allow_nan=False) + "\n"
    atomic_write_text(targets["json"], json_text, overwrite=overwrite)
    atomic_write_text(targets["md"], markdown, overwrite=overwrite)
    return markdown
