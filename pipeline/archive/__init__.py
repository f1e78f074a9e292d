"""Archive reprocessing: a Redis job queue of videos, exactly-once frame results, Aff-Wild2 files.

Modules: `jobs` (the queue), `run` (one job), `outputs` (files from the stream), `abaw` (the file
format and subject policy), `evaluate` (ABAW scores), `worker` (worker processes), `cli`.
"""
