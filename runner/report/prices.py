"""``report``'s cost estimate: node-hours times an hourly price per node.

The price is ``--price-per-node-hour`` when given; otherwise the pool's VM size is looked
up in ``PRICES``, a short table in which every price comes from a source named beside
it, with the date that source states and the date it was read. A VM size not in the
table gets no price: the report shows the node-hours and asks for
``--price-per-node-hour``. No price here is made up or derived from another size's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Source:
    publisher: str
    title: str
    reference: str  # where it was read; kept here, not written into the report page
    stated: str  # the date the source gives for its prices
    read: str  # the date it was read for this table


@dataclass(frozen=True, slots=True)
class Price:
    vm_size: str
    usd_per_hour: float
    region: str
    terms: str
    source: Source


C3X_VM_TYPES = Source(
    publisher="c3x.dev (blog)",
    title="Azure VM types compared: B vs D vs E vs F series",
    reference="https://c3x.dev/blog/azure-vm-types-compared",
    stated="June 2026",
    read="2026-12-03",
)
_TERMS = "Linux, pay-as-you-go"

PRICES: dict[str, Price] = {
    price.vm_size.lower(): price
    for price in (
        Price("Standard_D2s_v5", 0.096, "East US", _TERMS, C3X_VM_TYPES),
        Price("Standard_E2s_v5", 0.126, "East US", _TERMS, C3X_VM_TYPES),
        Price("Standard_F2s_v2", 0.085, "East US", _TERMS, C3X_VM_TYPES),
        Price("Standard_B2s_v2", 0.0416, "East US", _TERMS, C3X_VM_TYPES),
    )
}
"""Hourly prices per VM size (USD), each with its source. Prices differ by region, and
change: a stack elsewhere, or today, should pass --price-per-node-hour."""


def price_for(vm_size: str | None) -> Price | None:
    return PRICES.get(vm_size.lower()) if vm_size else None


@dataclass(frozen=True, slots=True)
class Estimate:
    node_hours: float
    per_hour: float | None  # None: no price known
    price: Price | None  # the table's entry used, if any
    given: bool  # the price came from --price-per-node-hour

    @property
    def cost(self) -> float | None:
        return None if self.per_hour is None else self.node_hours * self.per_hour


def estimate(node_hours: float, vm_size: str | None, given: float | None = None) -> Estimate:
    if given is not None:
        return Estimate(node_hours, given, None, True)
    price = price_for(vm_size)
    return Estimate(node_hours, price.usd_per_hour if price else None, price, False)
