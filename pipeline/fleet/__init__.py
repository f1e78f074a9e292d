"""The camera fleet: the desired cameras in Redis, members that share them out and claim their own,
fenced so that a camera's stream has one writer, and what `fleet status` reads (docs/fleet.md).
"""
