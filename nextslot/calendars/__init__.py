"""Staff members' own calendars: providers (CalDAV today), the sync engine, busy time, ICS feeds out."""
