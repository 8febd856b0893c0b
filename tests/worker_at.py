"""`python -m tests.worker_at <ISO instant> [worker arguments]`: workers.worker with "now" fixed at the
instant (ticking on from it), so that a test's fixed clock holds in the worker process it starts too
(run_worker passes the test's own "now")."""
import sys

import time_machine

from tests.s3_server import sign_with_the_real_clock
from workers.worker import main

if __name__ == "__main__":
    sign_with_the_real_clock()
    with time_machine.travel(sys.argv[1], tick=True):
        sys.exit(main(sys.argv[2:]))
