"""Cycle formulas as data: a linear sum of named sizes, evaluated in Python and printed for manifests.

The cycle contract between the simulator and the generated RTL is a handful of linear formulas in a
tile's sizes and the array's shape. Keeping each one as data (terms and a constant) means the number
the simulator uses and the text a generated design's manifest carries come from the same object, so
they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LinearFormula"]


@dataclass(frozen=True)
class LinearFormula:
    """``sum(coefficient * value[name]) + constant`` over the named sizes in ``terms``.

    Evaluates on ints or numpy arrays alike (``formula(m=..., k=..., rows=..., cols=...)``); sizes a
    formula does not name are ignored, sizes it names must be given.
    """

    terms: tuple[tuple[str, int], ...]
    constant: int = 0

    def __call__(self, **values):
        total = self.constant
        for name, coefficient in self.terms:
            if name not in values:
                raise TypeError(f"formula {self.text()!r} needs {name!r}")
            total = total + coefficient * values[name]
        return total

    def plus(self, constant: int) -> "LinearFormula":
        """The same formula with ``constant`` added."""
        return LinearFormula(self.terms, self.constant + constant)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.terms)

    def text(self) -> str:
        """The formula as a person writes it: ``k + m + rows + cols - 2``."""
        signed = [(coefficient, name if abs(coefficient) == 1 else f"{abs(coefficient)}*{name}")
                  for name, coefficient in self.terms if coefficient]
        if self.constant or not signed:
            signed.append((self.constant, str(abs(self.constant))))
        head_value, head = signed[0]
        text = f"-{head}" if head_value < 0 else head
        for value, term in signed[1:]:
            text += f" {'-' if value < 0 else '+'} {term}"
        return text
