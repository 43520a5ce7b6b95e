"""oracle: the world's renderer with the request applied, the ceiling the metrics can show.

It changes no model: its edit asks the track for the world's own outputs (``Track.oracle_pair``: for
images, renders of the requested scenes against renders of the original scenes; for text, the world's
descriptions of them) in place of the model's.
"""

from __future__ import annotations

from typing import Any

from editbench.core import EVERY_TRACK, Budget, Cost, Edit, Evidence, Method


class WorldEdit(Edit):
    """The world's answer: the track's oracle outputs, not the model's."""

    def pair(self, track: Any, session: Any, request: Any, inputs: Any) -> Any:
        return track.oracle_pair(session, request, inputs)


class Oracle(Method):
    name = "oracle"
    family = "reference"
    consumes = "none"
    tracks = EVERY_TRACK

    def fit(self, model, request: Any, evidence: Evidence, budget: Budget) -> Edit:
        return WorldEdit(self.name, self.config.as_dict(), cost=Cost(), meta={"request": request.to_dict()})


METHOD = Oracle
