"""Store-backed test history: ingestion, queries, quarantine, reports."""
