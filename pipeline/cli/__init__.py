"""Every verb of the `affectstream` command, one module per verb group, all the same shape: parse the
arguments, call the library, map errors to the exit status (`main.run_verb`). Nothing below imports it.
"""
