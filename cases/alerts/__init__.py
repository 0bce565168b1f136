"""What tells people: sightings of stolen bikes, the station duty room, in-app notifications and station webhooks."""
