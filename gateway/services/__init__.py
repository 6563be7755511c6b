"""City services on top of the store's stream: what a reading, a position or a tap means to
people. The child tracker's school arrivals and guardians' page, the buses' GTFS-Realtime feed,
ridership and the card registry."""
