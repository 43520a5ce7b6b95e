"""none: the unedited model, the floor every score is read against."""

from __future__ import annotations

from editbench.api import Budget, Cost, Edit, EditRequest, Evidence, Method


class NoEdit(Method):
    name = "none"
    family = "reference"
    consumes = "none"

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        return Edit(self.name, self.config.as_dict(), cost=Cost())
