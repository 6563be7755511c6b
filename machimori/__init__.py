"""machimori: a small city's own sensor network, from field device to city store."""
