"""The ``ausynth`` command line: one entry point dispatching to the pipeline stages."""
