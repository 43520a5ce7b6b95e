"""Result store, aggregation, publishing and the regression check."""
