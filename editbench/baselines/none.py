"""none: the unedited model, the floor every score is read against."""

from __future__ import annotations

from editbench.core import EVERY_TRACK, Budget, Cost, Edit, Evidence, Method
from editbench.world.requests import EditRequest


class NoEdit(Method):
    name = "none"
    family = "reference"
    tracks = EVERY_TRACK
    consumes = "none"

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        return Edit(self.name, self.config.as_dict(), cost=Cost())


METHOD = NoEdit
