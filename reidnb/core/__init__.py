"""The small shared core every paper builds on: configuration, the training loop, the
two-stage schedules, the run store, published-vs-measured results and the report runner.

Nothing here imports the data, model, loss, evaluation, viz or paper layers above it.
"""
