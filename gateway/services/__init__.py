"""City logic on top of the store: the buses' GTFS-Realtime feed, ridership, the card registry."""
