"""The step kit: what every runnable step is built from (the ``Step`` record, the composed and
finalized config, the Hydra entry point, the pre-flight input checks, the UI hint).

It sits between the library and the steps: the steps import it and the library, never each
other; ``main`` holds the registry and the chain; ``cli/`` sits on top.
"""
