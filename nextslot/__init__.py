"""nextslot: one race-free booking core for agents, booking pages and staff."""
