"""Command-line tools: jet, jet-start, jet-stop."""
