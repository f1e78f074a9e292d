"""The camera fleet: desired cameras in Redis, members holding one lease per camera (docs/fleet.md)."""
