"""The bundled per-action energy tables, each a cited ``EnergyTable``; results name the table they used.

Two tables, kept apart on purpose (different nodes, word widths and units): never mix their entries.
Width scaling of the MAC (``EnergyTable.mac_pj``): multiplier energy ~ product of operand widths,
adder energy ~ the wider operand. Memory energies scale linearly with the bits moved, and a global
buffer's with its size along Horowitz's SRAM curve (``EnergyTable.glb_pj_for``).
"""

from __future__ import annotations

from codesign.arch import EnergyTable
from codesign.errors import SpecError

__all__ = ["HOROWITZ_45NM", "EYERISS_65NM", "ENERGY_PRESETS", "OVERRIDABLE_FIELDS", "energy_preset"]

# --- Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
# doi:10.1109/ISSCC.2014.6757323; 45 nm, 0.9 V. Every memory entry is per 64-bit access.
_H_MULT_8B_PJ = 0.2  # 8-bit integer multiply (paper)
_H_ADD_8B_PJ = 0.03  # 8-bit integer add (paper)
_H_SRAM_32KB_PJ = 20.0  # SRAM read, 64 bit, 32 KB (paper)
_H_DRAM_64B_PJ = 1300.0  # DRAM read, 64 bit: the paper gives 1.3 to 2.6 nJ; we take the low end
# Not in the paper (modelling choices, stated here and in docs/arch-yaml.md):
#  - register file: the paper's SRAM curve extrapolated (slope of its 8 KB -> 32 KB segment, energy
#    ~ sqrt(size)) down to a 0.5 KB PE register file: 10 pJ * sqrt(0.5 / 8) = 2.5 pJ per 64 bits;
#  - one NoC hop: a value written into the neighbour PE's register, costed as one RF access.
_H_RF_64B_PJ = 2.5
_H_NOC_HOP_64B_PJ = _H_RF_64B_PJ

HOROWITZ_45NM = EnergyTable(
    name="horowitz-45nm",
    source="Horowitz, ISSCC 2014 (45 nm, 0.9 V); RF and NoC hop extrapolated, see docs/arch-yaml.md",
    mac_8b_pj=_H_MULT_8B_PJ + _H_ADD_8B_PJ,  # 8b multiply + 8b add = 0.23 pJ
    rf_pj=_H_RF_64B_PJ,
    noc_hop_pj=_H_NOC_HOP_64B_PJ,
    glb_pj=_H_SRAM_32KB_PJ,
    dram_pj=_H_DRAM_64B_PJ,
    access_bits=64,
    glb_reference_bytes=32 * 1024,
    multiplier_share=_H_MULT_8B_PJ / (_H_MULT_8B_PJ + _H_ADD_8B_PJ),  # 0.2 / 0.23 = 0.87
    unit="pJ",
    preset="horowitz-45nm",
)

# --- Chen, Emer, Sze, "Eyeriss: A Spatial Architecture for Energy-Efficient Dataflow for CNNs",
# ISCA 2016, Table IV (65 nm); also Sze et al., Proc. IEEE 2017, Fig. 22. Normalized energy of one
# 16-bit access relative to one 16-bit MAC: MAC 1x, RF (0.5 KB) 1x, inter-PE network 2x,
# global buffer (108 KB) 6x, DRAM 200x. The paper gives no absolute pJ for the 1x MAC, so this table
# stays normalized: its unit is "normalized MAC energy" (1 = one 16-bit MAC at 65 nm).
_E_MULTIPLIER_SHARE = 0.87  # split of a MAC into multiplier/adder: Horowitz's 8-bit ratio, a modelling choice
# mac_8b_pj is chosen so that mac_pj(16, 16) == 1 under the width scaling rule:
# mac_pj(16, 16) = mac_8b * (share * 16*16/64 + (1 - share) * 16/8).
_E_MAC_16B_SCALE = _E_MULTIPLIER_SHARE * 4.0 + (1.0 - _E_MULTIPLIER_SHARE) * 2.0

EYERISS_65NM = EnergyTable(
    name="eyeriss-65nm",
    source="Chen, Emer, Sze, ISCA 2016, Table IV (65 nm), normalized to one 16-bit MAC",
    mac_8b_pj=1.0 / _E_MAC_16B_SCALE,
    rf_pj=1.0,
    noc_hop_pj=2.0,
    glb_pj=6.0,
    dram_pj=200.0,
    access_bits=16,
    glb_reference_bytes=108 * 1024,
    multiplier_share=_E_MULTIPLIER_SHARE,
    unit="normalized MAC energy",
    preset="eyeriss-65nm",
)

ENERGY_PRESETS: dict[str, EnergyTable] = {t.name: t for t in (HOROWITZ_45NM, EYERISS_65NM)}

# Entries a YAML spec may override (every numeric field of EnergyTable).
OVERRIDABLE_FIELDS = (
    "mac_8b_pj",
    "rf_pj",
    "noc_hop_pj",
    "glb_pj",
    "dram_pj",
    "access_bits",
    "glb_reference_bytes",
    "multiplier_share",
)


def energy_preset(name: str) -> EnergyTable:
    """The bundled table called ``name``; SpecError listing the tables if there is none."""
    try:
        return ENERGY_PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(ENERGY_PRESETS))
        raise SpecError(f"unknown energy table {name!r}; known tables: {known}") from None
