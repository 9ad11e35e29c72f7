"""Entry points for people: the `ccs` command and the Python client it uses."""
