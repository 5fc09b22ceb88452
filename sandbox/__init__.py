"""A local PagerDuty (REST API v2 subset + Events API v2) on loopback, for the demo and tests."""
