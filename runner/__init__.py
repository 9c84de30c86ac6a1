"""The runner: submits one Batch task per input file, watches it, fetches the results."""
