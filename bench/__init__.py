"""`make bench`: measurements behind the design choices (see README, "Performance")."""
