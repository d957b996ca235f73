"""Transit routing on a GTFS feed: earliest arrival and the (arrival, transfers) Pareto set over (stop, mode) states."""
