"""Security audit: vulnerable dependencies (pip-audit), code issues (bandit), committed
secrets, merged into one report with severity, location and fix."""
