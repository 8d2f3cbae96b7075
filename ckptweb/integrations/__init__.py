"""One-line integrations of ckptweb into training frameworks (optional extras)."""
