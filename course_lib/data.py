"""`python -m course_lib.data` (`make data`): fetch and verify every dataset. See course_lib.core.data.

An entry point of its own, because `python -m course_lib.core.data` imports course_lib.core first, whose
__init__ imports .data, and runpy then warns that the module ran after being imported.
"""
from .core.data import main

if __name__ == "__main__":
    raise SystemExit(main())
