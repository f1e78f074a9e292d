"""Every verb of the `affectstream` command, one module per verb group, all the same shape: `register`
adds the group's parsers, each handler parses its arguments into a library call and raises named errors;
`main.main` is the one place that maps an error to the exit status. Nothing below imports it.
"""
