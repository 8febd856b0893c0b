"""Start one RQ worker on the SmilePass queues: `python -m workers.worker [queue ...]`.

Heavy libraries are imported inside job functions, never here, so the forked work horse starts
clean."""
import os
import sys

from redis import Redis
from rq import Worker

from smilepass.queue import DEFAULT_QUEUE, SCAN_QUEUE, warn_if_evicting

# Mail and sweeps first: a scan repair can take a minute.
QUEUES = [DEFAULT_QUEUE, SCAN_QUEUE]


def main(argv: list[str]) -> int:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    connection = Redis.from_url(url)
    warn_if_evicting(connection)
    burst = "--burst" in argv
    queues = [arg for arg in argv if not arg.startswith("--")] or QUEUES
    worker = Worker(queues, connection=connection)
    worker.work(burst=burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
