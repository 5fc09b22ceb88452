"""From the store to PagerDuty: lanes per routing key, retries, rate limits, the one sender."""
