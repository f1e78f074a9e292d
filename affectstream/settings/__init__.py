"""What both the runtime (`pipeline`) and `training` need to read settings: typed models on pydantic with
the house error messages (`typed`), `${ENV}` interpolation, the `--set KEY=VALUE` parser (`overrides`) and
the names of the environment variables (`env`)."""
