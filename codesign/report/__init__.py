"""HTML reports: one self-contained page per simulation, exploration or sweep, with a PNG per figure and the
JSON and CSV behind each beside it, written to a folder all-or-nothing (``codesign ... --report DIR``).

``write_report(results, folder)`` (also ``codesign.write_report``) is the Python entry; the CLI checks the
folder with ``check_report_dir`` before any slow work, draws with ``draw_report`` once everything ran and writes
the drawn files last. Matplotlib loads only when a report is drawn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from codesign.errors import OutputError
from codesign.report.folder import check_report_dir, is_report_dir

if TYPE_CHECKING:  # pragma: no cover
    from codesign.arch import ArchSpec
    from codesign.report.html import Page

__all__ = ["write_report", "write_page", "draw_report", "DrawnReport", "check_report_dir", "is_report_dir",
           "require_matplotlib"]


def require_matplotlib() -> None:
    """Fail as one line when Matplotlib (the ``plot`` extra) is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise OutputError("--report needs Matplotlib: pip install 'codesign[plot]'") from None


@dataclass(frozen=True)
class DrawnReport:
    """Every file of a report, drawn in memory (index.html; a PNG, JSON and CSV per figure; the full results) and
    its manifest; ``write`` puts them on disk as one folder."""

    files: Mapping[str, bytes | str]
    manifest: Mapping[str, Any]

    def write(self, folder: str | os.PathLike) -> Path:
        from codesign.report.folder import write_folder

        return write_folder(folder, self.files, self.manifest)


def draw_report(page: "Page", files: Mapping[str, str] | None = None) -> DrawnReport:
    """Draw every figure of ``page`` and lay out its HTML, beside ``files`` (the full results). Nothing touches
    the disk here, so a failure while drawing leaves nothing behind."""
    require_matplotlib()
    from codesign.report.figures import figure, png_bytes
    from codesign.report.html import FigureFile, render_html

    out: dict[str, bytes | str] = dict(files or {})
    placed: dict[str, FigureFile] = {}
    for table in page.figures:
        if table.name in placed:
            raise ValueError(f"two figures named {table.name!r} on one page")
        data, width, height = png_bytes(figure(table))
        names = FigureFile(f"{table.name}.png", f"{table.name}.json", f"{table.name}.csv", width, height)
        out[names.png], out[names.json], out[names.csv] = data, table.json_text(), table.csv_text()
        placed[table.name] = names
    out["index.html"] = render_html(page, placed)
    manifest = {"kind": page.kind, "title": page.title, "figures": list(placed), **page.meta}
    return DrawnReport(out, manifest)


def write_page(folder: str | os.PathLike, page: "Page", files: Mapping[str, str] | None = None) -> Path:
    """Draw ``page`` and write it, with ``files``, as the folder ``folder`` (atomically; a previous report there
    is replaced, any other non-empty folder refused)."""
    check_report_dir(folder)
    return draw_report(page, files).write(folder)


def write_report(results: Any, folder: str | os.PathLike, *, arch: "ArchSpec | str | None" = None,
                 model: str | None = None) -> Path:
    """Write the HTML report of ``results`` to ``folder`` and return the folder: a ``SimResult`` or a sequence
    of them (one per dataflow; ``arch`` the spec or preset they ran on, default the preset named by the
    results), an ``ExploreResult`` or a ``SweepResult``."""
    from codesign.explore import ExploreResult
    from codesign.report import pages
    from codesign.sweep import SweepResult
    from sim.results import SimResult

    check_report_dir(folder)
    if isinstance(results, ExploreResult):
        return write_page(folder, pages.explore_page(results), pages.explore_files(results))
    if isinstance(results, SweepResult):
        return write_page(folder, pages.sweep_page(results), pages.sweep_files(results))
    runs: Sequence[SimResult] = [results] if isinstance(results, SimResult) else list(results)
    if not runs or not all(isinstance(run, SimResult) for run in runs):
        raise TypeError("report() takes a SimResult, a sequence of them, an ExploreResult or a SweepResult")
    from codesign.arch import ArchSpec
    from codesign.arch_loader import load_arch

    spec = arch if isinstance(arch, ArchSpec) else load_arch(arch if arch is not None else runs[0].arch)
    return write_page(folder, pages.sim_page(runs, spec, model), pages.sim_files(runs))
