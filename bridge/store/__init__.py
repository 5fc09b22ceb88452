"""The durable store (the outbox): every event stays here until PagerDuty took it."""
