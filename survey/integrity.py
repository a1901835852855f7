"""Integrity flags (indicators.md, seeds 000/003/004 on 数字脱贫 and 弄虚作假): what is worth a second look.

These are flags, never verdicts: a short visit may be a follow-up, a far location a household working in town.
The thresholds are county settings; the defaults are the issue's.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FLAGS",
    "FLAG_LABELS",
    "FLAG_LABELS_EN",
    "Thresholds",
    "answers_digest",
    "distance_m",
    "max_degrees_apart",
]

# Report order: the visit's own record first, then patterns across visits, then outcomes.
FLAGS: tuple[str, ...] = (
    "short_visit",
    "far_location",
    "visit_burst",
    "identical_answers",
    "satisfaction_gap",
    "closed_without_decision",
)
FLAG_LABELS: dict[str, str] = {
    "short_visit": "走访用时过短",
    "far_location": "定位远离登记住址",
    "visit_burst": "短时间内多次走访",
    "identical_answers": "多户答案完全相同",
    "satisfaction_gap": "走访满意度远高于短信",
    "closed_without_decision": "上报问题销号无会议决定",
}
FLAG_LABELS_EN: dict[str, str] = {
    "short_visit": "visit unusually short",
    "far_location": "location far from the registered place",
    "visit_burst": "many visits within minutes",
    "identical_answers": "identical answers across households",
    "satisfaction_gap": "recorded satisfaction far above SMS",
    "closed_without_decision": "escalated problem closed without a meeting decision",
}

EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180  # along a meridian, and along the equator


@dataclass(frozen=True)
class Thresholds:
    min_visit_minutes: float = 10.0  # a full visit faster than this is flagged
    max_distance_m: float = 1000.0  # visit location further than this from the registered place
    burst_visits: int = 3  # this many visits by one cadre …
    burst_minutes: float = 15.0  # … within this many minutes
    satisfaction_gap_points: float = 20.0  # recorded rate above the SMS rate by more than this (points)
    identical_min_households: int = 2  # an answer set shared by this many households


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def max_degrees_apart(metres: float) -> float:
    """A bound the database can test without trigonometry.

    Two points closer than `metres` differ by less than this in latitude, and (east–west degrees being shorter
    away from the equator) the plain degree distance sqrt(dlat² + dlon²) of points *further* than `metres` apart
    is at least this. So rows with sqrt(dlat² + dlon²) ≤ bound are surely near; the rest are checked exactly.
    """
    return metres / METRES_PER_DEGREE


def _comparable(value: Any) -> Any:
    """Drop what is unique to a visit by nature (a GPS fix, a photo's file id) before comparing answers."""
    if isinstance(value, Mapping):
        if {"lat", "lon"} <= value.keys() or "file_id" in value:
            return None
        return {k: _comparable(v) for k, v in value.items() if _comparable(v) is not None}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def answers_digest(answers: Mapping[str, Any]) -> str:
    """A fingerprint of a visit's answers, equal exactly when two visits answered everything alike.

    Location and photos are left out: they differ even between copied visits.
    """
    comparable = _comparable(answers)
    text = json.dumps(comparable, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
