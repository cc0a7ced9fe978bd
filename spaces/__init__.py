"""The built-in space files (installed as the package data `dse.spaces`)."""
