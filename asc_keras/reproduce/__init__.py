"""Reproduce the paper's tables: plan (rows -> runs + weights), runner (processes, devices,
shards, resume) and report (fused rows scored against the paper's numbers)."""
