"""`python -m course_lib.doctor` (`make doctor`): is this machine ready for the course? See course_lib.harness.doctor."""
from .harness.doctor import main

if __name__ == "__main__":
    raise SystemExit(main())
