"""What training and the runtime both score with: numpy metrics and the Aff-Wild2 (ABAW) file formats.

Below `pipeline` and `training` and beside `engines`: it imports none of them (the import contract in
pyproject.toml keeps it so), and nothing heavier than numpy.
"""
