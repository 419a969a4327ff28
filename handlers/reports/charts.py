"""Charts as PNG bytes (matplotlib, Agg) with Chinese labels in the CJK font the install ships.

The font comes from the ``cvttf-notosanscjk-regular`` package (Noto Sans CJK, full
OpenType font: every Simplified-Chinese code point is in its cmap); it is registered
with matplotlib's font manager by file path, so a fresh machine without system CJK fonts
renders no tofu. :func:`missing_glyphs` lets tests check every label against the font.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ft2font import FT2Font  # noqa: E402

COLORS = ("#2f6fde", "#3d8bfd", "#5aa0ff", "#7db4ff", "#9fc7ff", "#b9d6ff", "#cfe3ff", "#e1edff", "#eef5ff")


@lru_cache(maxsize=1)
def font_path() -> Path:
    import cvttf_NotoSansCJK_Regular as noto  # the font package listed in pyproject dependencies

    return Path(noto.get_TTF_path())


@lru_cache(maxsize=1)
def font_family() -> str:
    """Register the CJK font file with matplotlib (once) and return its family name."""
    path = font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def missing_glyphs(text: str) -> str:
    """The characters of ``text`` the chart font has no glyph for (empty: no tofu)."""
    font = FT2Font(str(font_path()))
    return "".join(ch for ch in dict.fromkeys(text) if not ch.isspace() and font.get_char_index(ord(ch)) == 0)


def _figure(width: float, height: float) -> Figure:
    font_family()
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _style(ax: object) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)  # type: ignore[attr-defined]


def funnel_png(title: str, labels: Sequence[str], counts: Sequence[int], notes: Sequence[str] = ()) -> bytes:
    """Horizontal bars, first stage on top; ``notes`` (e.g. "+3 · 420万") written after each bar."""
    family = font_family()
    fig = _figure(6.4, 0.45 * max(3, len(labels)) + 1.0)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, counts, color=[COLORS[i % len(COLORS)] for i in range(len(labels))], height=0.7)
    ax.set_yticks(ys, labels=list(labels), fontfamily=family, fontsize=10)
    top = max(counts) if counts and max(counts) > 0 else 1
    for y, n, note in zip(ys, counts, list(notes) + [""] * (len(labels) - len(notes))):
        ax.text(n + top * 0.01, y, f"{n}  {note}".rstrip(), va="center", fontfamily=family, fontsize=9)
    ax.set_xlim(0, top * 1.35)
    ax.set_title(title, fontfamily=family, fontsize=12, loc="left")
    ax.tick_params(axis="x", labelsize=8)
    _style(ax)
    return _png(fig)


def bars_png(title: str, labels: Sequence[str], values: Sequence[float], unit: str = "") -> bytes:
    """Vertical bars (e.g. receivables per overdue bucket, notes per rep)."""
    family = font_family()
    fig = _figure(6.4, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(len(labels)))
    ax.bar(xs, values, color=COLORS[0], width=0.6)
    ax.set_xticks(xs, labels=list(labels), fontfamily=family, fontsize=9)
    for x, v in zip(xs, values):
        ax.text(x, v, f"{v:g}{unit}", ha="center", va="bottom", fontfamily=family, fontsize=8)
    ax.set_title(title, fontfamily=family, fontsize=12, loc="left")
    _style(ax)
    return _png(fig)
