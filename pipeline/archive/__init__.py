"""Archive reprocessing: a Redis job queue of videos, exactly-once frame results, Aff-Wild2 files.

Modules: `jobs` (the queue), `run` (one job), `outputs` (files from the stream), `abaw` (the Aff-Wild2
file formats and release layouts, shared with training), `subject` (which face is the subject), `fill` (a
prediction for every frame), `submission` (the challenge's files), `evaluate` (ABAW scores), `worker`
(worker processes), `cli`.
"""
