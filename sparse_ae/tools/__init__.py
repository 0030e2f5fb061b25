"""Command-line tools that prepare artefacts for evaluators (e.g. the digits classifier)."""
