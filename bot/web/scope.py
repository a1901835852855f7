"""Who sees what on the dashboard (indicators.md): county roles the county, township roles their township,
every other cadre only their own households. Plain values, no I/O: the pages ask, storage answers."""

from __future__ import annotations

from dataclasses import dataclass

# 督查指挥中心 is the county's supervision centre: it receives every township's minutes and overdue list
COUNTY_ROLES: frozenset[str] = frozenset({"督查指挥中心"})
# township-wide roles: the secretary and specialist run the queue; the support cadre and the city-level
# leader are assigned to the township as a whole
TOWNSHIP_ROLES: frozenset[str] = frozenset({"乡镇党委书记", "扶贫专干", "乡镇包保干部", "市级包保领导"})


@dataclass(frozen=True)
class Scope:
    level: str  # "county" | "township" | "own"
    cadre_id: int
    county_id: int
    township_id: int

    def sees_county(self) -> bool:
        return self.level == "county"

    def sees_township(self, township_id: int, county_id: int) -> bool:
        if self.level == "county":
            return county_id == self.county_id
        return self.level == "township" and township_id == self.township_id

    def sees_village(
        self, township_id: int, county_id: int, own_villages: tuple[int, ...], village_id: int
    ) -> bool:
        if self.level == "own":
            return village_id in own_villages
        return self.sees_township(township_id, county_id)


def scope_of(cadre_id: int, role: str, county_id: int, township_id: int) -> Scope:
    if role in COUNTY_ROLES:
        level = "county"
    elif role in TOWNSHIP_ROLES:
        level = "township"
    else:
        level = "own"
    return Scope(level, cadre_id, county_id, township_id)
