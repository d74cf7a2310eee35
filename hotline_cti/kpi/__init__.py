"""Call-centre KPIs over call records (pure: records in, figures out; no I/O, no clock)."""
