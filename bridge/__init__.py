"""The relay: Apica ASM webhooks in, PagerDuty Events API v2 out. Never imports infra or pulumi."""
