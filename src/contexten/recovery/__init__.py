"""Recovery: a pure policy (what to try) and a manager (doing it, recorded)."""
