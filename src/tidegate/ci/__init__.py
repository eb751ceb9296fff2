"""Where a CI scan runs: pipeline metadata read from the CI system's environment.

`detect(env)` is pure (it takes the environment as a mapping), so tests pass a dict and the CLI
passes `os.environ`.
"""

from tidegate.ci.metadata import MAX_VALUE, PipelineInfo, System, detect

__all__ = ["MAX_VALUE", "PipelineInfo", "System", "detect"]
