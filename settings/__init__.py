"""Settings shared by the runtime and training: typed config models and their loading."""
