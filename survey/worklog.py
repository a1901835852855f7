"""Who signs a cadre's monthly 扶贫日志 (indicators.md, "Work log 扶贫日志"; seed 001 item 2).

- 第一书记 (first secretary): the township's principal leaders 乡镇主要领导;
- 驻村工作队 (village work team): the city-level leader 市级包保领导 assigned to the township;
- 市级包保领导 (city-level leader): the principal leaders of the city's four leading bodies 市级四个班子主要领导;
- every other role: the seed names no signer, so the log carries a generic reviewer (审核人) line.

Pure: the caller looks up the township's city-level leaders in the roster and passes their names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CITY_LEADER_ROLE", "SIGNER_BY_ROLE", "Signer", "signer_for"]

CITY_LEADER_ROLE = "市级包保领导"

# roster role -> who signs (a key of the worklog templates' labels)
SIGNER_BY_ROLE: dict[str, str] = {
    "第一书记": "township_leaders",
    "驻村工作队": "city_leader",
    CITY_LEADER_ROLE: "city_principals",
}


@dataclass(frozen=True)
class Signer:
    """The signer of a log: a title key, and the people by name where the roster says who they are."""

    kind: str  # township_leaders | city_leader | city_principals | unspecified
    names: tuple[str, ...] = ()

    @property
    def specified(self) -> bool:
        """False for roles the seed names no signer for."""
        return self.kind != "unspecified"

    @property
    def unnamed_city_leader(self) -> bool:
        """A work team's log in a township with no city-level leader in the roster: only the title is known."""
        return self.kind == "city_leader" and not self.names


def signer_for(role: str, city_leaders: Iterable[str] = ()) -> Signer:
    """The signer of a role's log; `city_leaders` are the names of the township's 市级包保领导 (for 驻村工作队)."""
    kind = SIGNER_BY_ROLE.get(role, "unspecified")
    if kind == "city_leader":
        return Signer(kind, tuple(dict.fromkeys(name for name in city_leaders if name)))
    return Signer(kind)
