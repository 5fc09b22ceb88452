"""Stack files -> validated model -> plan (pure) -> PagerDuty resources via Pulumi (thin)."""
