"""Benchmarks: the gateway against bare boto3, as ratios measured side by side."""
