"""auditdm: auditing vision-language models with a synthetic visual world."""
