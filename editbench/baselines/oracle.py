"""oracle: the world's renderer with the request applied, the ceiling the metrics can show.

It changes no model: a harness asks ``Method.renders_world`` and then scores renders of the requested
scenes (``request.apply(scene)``) against renders of the original scenes.
"""

from __future__ import annotations

from editbench.api import Budget, Cost, Edit, EditRequest, Evidence, Method


class Oracle(Method):
    name = "oracle"
    family = "reference"
    consumes = "none"
    renders_world = True

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        return Edit(self.name, self.config.as_dict(), cost=Cost(), meta={"request": request.to_dict()})
