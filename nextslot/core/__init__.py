"""The core: the booking rules and the concerns around them, over storage through a unit of work."""
