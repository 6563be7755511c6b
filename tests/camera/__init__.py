"""Wildlife camera tests: agent, drivers, model and simulator."""
