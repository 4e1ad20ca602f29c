"""Text pipeline, candidate generation, ranking, calibration, coding rules, routing and model packs."""
