"""Repeat and nuisance callers: keyed hashes of numbers, the sliding window, the managed lists."""
