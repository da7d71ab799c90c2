"""A report as a list of blocks, rendered to Markdown (files linked) and to self-contained HTML.

HTML embeds every figure as a base64 PNG and inlines its stylesheet, so the one file can be
mailed or archived. Inline markup in text: **bold**, `code` and [links](path), in both outputs.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Document"]

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1150px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.1em}code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
th,td{border:1px solid #d6d6d6;padding:.2em .55em;text-align:left}th{background:#f2f2f2}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0 2em}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#444;margin-top:.3em}.note{color:#555}
div.box{border:2px solid #0072B2;border-radius:6px;padding:.2em 1em;margin:1em 0;background:#f5f9fc}
"""


def _inline_html(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _is_num(text: str) -> bool:
    text = text.strip()
    return text == "–" or bool(re.fullmatch(r"[-+~]?[\d.,]+(e[-+]?\d+)?( ± [\d.,]+)?%?", text))


def _plain(text: str) -> str:
    """Caption text without inline markup, cut at the first sentence (for alt texts)."""
    return re.sub(r"[*`]", "", text).split(". ")[0].rstrip(".")


@dataclass
class Document:
    """Blocks of a report; ``to_markdown`` and ``to_html`` render them."""

    title: str
    blocks: list = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", level, text))

    def paragraph(self, text: str, note: bool = False) -> None:
        self.blocks.append(("paragraph", text, note))

    def bullets(self, items) -> None:
        items = [str(i) for i in items]
        if items:
            self.blocks.append(("bullets", items))

    def box(self, start: bool = True) -> None:
        """Open (``start``) or close a box around the blocks between: a framed panel in HTML, a
        horizontal rule after it in Markdown."""
        self.blocks.append(("box", start))

    def table(self, df: pd.DataFrame, caption: str | None = None, csv: str | None = None) -> None:
        """A table of display strings (format numbers before); ``csv``: relative path of its full CSV."""
        self.blocks.append(("table", df.astype(str).reset_index(drop=True), caption, csv))

    def figure(self, png: Path, svg: Path | None, caption: str, base: Path) -> None:
        """A figure: ``png`` embedded in HTML, both files linked (relative to ``base``) in Markdown."""
        self.blocks.append(("figure", Path(png), Path(svg) if svg else None, caption, Path(base)))

    # ----- rendering ----------------------------------------------------------------------
    def to_markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                lines += ["#" * block[1] + " " + block[2], ""]
            elif kind == "paragraph":
                lines += [(f"_{block[1]}_" if block[2] else block[1]), ""]
            elif kind == "bullets":
                lines += [f"- {i}" for i in block[1]] + [""]
            elif kind == "box":
                lines += [] if block[1] else ["---", ""]
            elif kind == "table":
                _, df, caption, csv = block
                if caption:
                    lines += [caption, ""]
                cells = lambda row: "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
                lines.append(cells(df.columns))
                lines.append("|" + "|".join("---:" if df[c].map(_is_num).all() else "---" for c in df.columns) + "|")
                lines += [cells(r) for r in df.itertuples(index=False)]
                lines.append("")
                if csv:
                    lines += [f"Full table: [{csv}]({csv})", ""]
            elif kind == "figure":
                _, png, svg, caption, base = block
                rel = png.relative_to(base).as_posix()
                lines.append(f"![{_plain(caption)}]({rel})")
                links = f"[PNG]({rel})" + (f", [SVG]({svg.relative_to(base).as_posix()})" if svg else "")
                lines += ["", f"{caption} ({links})", ""]
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self) -> str:
        parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                 f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
                 f"<h1>{html.escape(self.title)}</h1>"]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                parts.append(f"<h{block[1]}>{_inline_html(block[2])}</h{block[1]}>")
            elif kind == "paragraph":
                cls = ' class="note"' if block[2] else ""
                parts.append(f"<p{cls}>{_inline_html(block[1])}</p>")
            elif kind == "bullets":
                parts.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "box":
                parts.append('<div class="box">' if block[1] else "</div>")
            elif kind == "table":
                _, df, caption, csv = block
                if caption:
                    parts.append(f"<p>{_inline_html(caption)}</p>")
                head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
                body = "".join("<tr>" + "".join(
                    f'<td{" class=num" if _is_num(str(v)) else ""}>{html.escape(str(v))}</td>' for v in row) + "</tr>"
                    for row in df.itertuples(index=False))
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
                if csv:
                    parts.append(f'<p class="note">Full table: <code>{html.escape(csv)}</code></p>')
            elif kind == "figure":
                _, png, svg, caption, base = block
                data = base64.b64encode(png.read_bytes()).decode("ascii")
                alt = html.escape(_plain(caption))
                files = html.escape(png.relative_to(base).as_posix()) + (
                    ", " + html.escape(svg.relative_to(base).as_posix()) if svg else "")
                parts.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                             f"<figcaption>{_inline_html(caption)} <span class=note>({files})</span>"
                             "</figcaption></figure>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"
