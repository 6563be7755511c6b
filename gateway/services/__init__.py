"""City services on top of the store's stream: what a position or a reading means to people."""
