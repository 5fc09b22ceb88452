"""From an ASM webhook body to stored PagerDuty events: read, authenticate, route, map, accept."""
