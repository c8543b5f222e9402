"""Self-contained HTML reports: one file, images embedded as base64, readable offline."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

_TEMPLATE = jinja2.Environment(
    loader=jinja2.PackageLoader("selenite", "report/templates"), autoescape=jinja2.select_autoescape(["html"])
).get_template("report.html")


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[object]]]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (data URI, caption)


def png_data_uri(png_bytes: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


def figure_data_uri(fig) -> str:
    """PNG data URI of a matplotlib figure (closed afterwards). Metadata stripped for stable bytes."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return png_data_uri(buf.getvalue())


def render_report(title: str, sections: list[Section], subtitle: str = "") -> str:
    return _TEMPLATE.render(title=title, subtitle=subtitle, sections=sections, escape=html.escape)


def write_report(path: str | Path, title: str, sections: list[Section], subtitle: str = "") -> Path:
    from selenite.runs import write_text_atomic

    write_text_atomic(path, render_report(title, sections, subtitle))
    return Path(path)
