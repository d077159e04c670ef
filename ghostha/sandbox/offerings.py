"""Instance types offered per Availability Zone (a switch, off by default: moto's bundled offerings).

AWS does not offer every instance type in every AZ ("Find an Amazon EC2 instance type": DescribeInstanceTypeOfferings
with LocationType availability-zone). With `Sandbox.instance_type_offerings = {az: {types}}` set:
- DescribeInstanceTypeOfferings(LocationType=availability-zone) answers from that map;
- an Auto Scaling group launches only into the subnets whose AZ offers its instance type (none at all when no
  subnet's AZ does), as AWS refuses the launch there.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.instance_types import InstanceTypeOfferingBackend


class Offerings:
    def __init__(self) -> None:
        self.by_az: dict[str, set[str]] | None = None  # None: moto's bundled data

    def offered(self, az: str, instance_type: str) -> bool:
        return self.by_az is None or instance_type in self.by_az.get(az, set())


OFFERINGS = Offerings()
_original: dict[str, Any] = {}


def _describe(self: Any, location_type: str | None = None, filters: dict[str, Any] | None = None) -> list[Any]:
    if OFFERINGS.by_az is None or location_type != "availability-zone":
        return list(_original["describe_instance_type_offerings"](self, location_type, filters))
    every = [
        {"InstanceType": t, "LocationType": "availability-zone", "Location": az}
        for az, types in sorted(OFFERINGS.by_az.items())
        if az.startswith(self.region_name)
        for t in sorted(types)
    ]
    return [o for o in every if self.matches_filters(o, filters or {}, "availability-zone")]


def install() -> None:
    from ghostha.sandbox.hooks import replace_handlers

    replace_handlers(InstanceTypeOfferingBackend, {"describe_instance_type_offerings": _describe}, _original)
