"""Call records: one row per call, built from what Asterisk tells us over AMI."""
