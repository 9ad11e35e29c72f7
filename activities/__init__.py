"""Activities: each module owns one outside system (the database, notifications)."""
