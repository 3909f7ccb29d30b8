"""A report page as data (title, blocks of text, tables and figures) and its self-contained HTML: styles inline,
figures as PNG files beside it, nothing fetched from a network."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Union

from codesign.report.tables import FigureTable

__all__ = ["Text", "Items", "HtmlTable", "FigureBlock", "Heading", "Page", "render_html", "FigureFile"]


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Text:
    text: str
    style: str = ""  # "" | "muted" | "note"


@dataclass(frozen=True)
class Items:
    """A bulleted list (notes, winners)."""

    items: tuple[str, ...]
    style: str = ""


@dataclass(frozen=True)
class HtmlTable:
    """A table of text cells; ``numeric`` columns are right-aligned; rows in ``strong`` are bold."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    numeric: frozenset[int] = frozenset()
    strong: frozenset[int] = frozenset()
    folded: bool = False  # shown under a <details> the reader opens


@dataclass(frozen=True)
class FigureBlock:
    table: FigureTable


Block = Union[Heading, Text, Items, HtmlTable, FigureBlock]


@dataclass(frozen=True)
class FigureFile:
    """Where a figure's files went and the PNG's size in pixels."""

    png: str
    json: str
    csv: str
    width: int
    height: int


@dataclass(frozen=True)
class Page:
    """Everything on one report page; ``downloads`` are (file name, what it is) of the full results."""

    kind: str  # "sim" | "explore" | "sweep"
    title: str
    subtitle: str
    blocks: tuple[Block, ...]
    downloads: tuple[tuple[str, str], ...] = ()
    meta: dict = field(default_factory=dict)

    @property
    def figures(self) -> list[FigureTable]:
        return [block.table for block in self.blocks if isinstance(block, FigureBlock)]


STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.subtitle, .muted { color: #666; } .note { color: #8a5a00; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #eee; } th { text-align: left; background: #f6f6f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; } tr.strong td { font-weight: 600; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; max-width: 60em; } .files a { margin-right: 1em; }
.scroll { overflow-x: auto; }
"""


def _table_html(block: HtmlTable) -> str:
    head = "".join(f'<th class="num">{escape(c)}</th>' if i in block.numeric else f"<th>{escape(c)}</th>"
                   for i, c in enumerate(block.columns))
    body = []
    for r, row in enumerate(block.rows):
        cells = "".join(f'<td class="num">{escape(v)}</td>' if i in block.numeric else f"<td>{escape(v)}</td>"
                        for i, v in enumerate(row))
        body.append(f'<tr class="strong">{cells}</tr>' if r in block.strong else f"<tr>{cells}</tr>")
    table = f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    if block.folded:
        return f"<details><summary>{escape(block.caption)}</summary>{table}</details>"
    caption = f'<p class="muted">{escape(block.caption)}</p>' if block.caption else ""
    return table + caption


def _figure_html(table: FigureTable, files: FigureFile) -> str:
    return (f'<figure id="{escape(table.name)}"><img src="{escape(files.png)}" width="{files.width}" '
            f'height="{files.height}" alt="{escape(table.title)}">'
            f"<figcaption>{escape(table.caption)} <span class=\"files\">Data: "
            f'<a href="{escape(files.json)}">{escape(files.json)}</a>'
            f'<a href="{escape(files.csv)}">{escape(files.csv)}</a></span></figcaption></figure>')


def render_html(page: Page, figure_files: dict[str, FigureFile]) -> str:
    """The page as one HTML document; ``figure_files`` maps each figure's name to its files."""
    parts = [f"<h1>{escape(page.title)}</h1>", f'<p class="subtitle">{escape(page.subtitle)}</p>']
    for block in page.blocks:
        if isinstance(block, Heading):
            parts.append(f"<h2>{escape(block.text)}</h2>")
        elif isinstance(block, Text):
            klass = f' class="{block.style}"' if block.style else ""
            parts.append(f"<p{klass}>{escape(block.text)}</p>")
        elif isinstance(block, Items):
            klass = f' class="{block.style}"' if block.style else ""
            parts.append(f"<ul{klass}>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, HtmlTable):
            parts.append(_table_html(block))
        elif isinstance(block, FigureBlock):
            parts.append(_figure_html(block.table, figure_files[block.table.name]))
    if page.downloads:
        links = "".join(f'<li><a href="{escape(name)}">{escape(name)}</a>: {escape(what)}</li>'
                        for name, what in page.downloads)
        parts.append(f"<h2>Files</h2><ul>{links}</ul>")
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(page.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
